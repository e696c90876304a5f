/* mime.h - Content-Type by file extension; pure table lookup. */
#ifndef LH_MIME_H
#define LH_MIME_H

/*
 * The Content-Type for a file name or path, chosen by its extension (case-
 * insensitive, the part after the last '.' of the last segment). Text types carry
 * "; charset=utf-8". Unknown or missing extension: "application/octet-stream".
 * Returns a static string; never NULL.
 */
const char *lh_mime_type(const char *path);

/*
 * The Content-Encoding that files with path's extension are stored in: "gzip" for
 * .svgz (gzip-compressed SVG, whose Content-Type is image/svg+xml), NULL for every
 * other name. Returns a static string or NULL.
 */
const char *lh_mime_encoding(const char *path);

#endif
