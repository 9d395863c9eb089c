/*
 * zpz: which format a stream is in (magic bytes), the file suffixes, and
 * the gzip member header zpz writes (RFC 1952 with one extra subfield, 'Z'
 * 'P', holding the member's compressed and uncompressed sizes).
 */
#include "zpz.h"

#include <errno.h>
#include <string.h>

int zpz_detect(const unsigned char *p, size_t n)
{
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return ZPZ_FMT_GZIP;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return ZPZ_FMT_ZSTD;
    if (n >= 4 && p[0] == 0x04 && p[1] == 0x22 && p[2] == 0x4d && p[3] == 0x18)
        return ZPZ_FMT_LZ4;
    return 0;
}

const char *zpz_suffix(int format)
{
    switch (format) {
    case ZPZ_FMT_GZIP: return ".gz";
    case ZPZ_FMT_ZSTD: return ".zst";
    case ZPZ_FMT_LZ4: return ".lz4";
    }
    return "";
}

const char *zpz_format_name(int format)
{
    switch (format) {
    case ZPZ_FMT_GZIP: return "gzip";
    case ZPZ_FMT_ZSTD: return "zstd";
    case ZPZ_FMT_LZ4: return "lz4";
    }
    return "?";
}

int zpz_format_by_name(const char *name)
{
    if (strcmp(name, "gzip") == 0 || strcmp(name, "gz") == 0)
        return ZPZ_FMT_GZIP;
    if (strcmp(name, "zstd") == 0 || strcmp(name, "zst") == 0)
        return ZPZ_FMT_ZSTD;
    if (strcmp(name, "lz4") == 0)
        return ZPZ_FMT_LZ4;
    return 0;
}

int zpz_codec_of(int format)
{
    switch (format) {
    case ZPZ_FMT_GZIP: return ZP_CODEC_GZIP;
    case ZPZ_FMT_ZSTD: return ZP_CODEC_ZSTD;
    case ZPZ_FMT_LZ4: return ZP_CODEC_LZ4;
    }
    return 0;
}

static void put_le16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    put_le16(p, v);
    put_le16(p + 2, v >> 16);
}

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const unsigned char *p)
{
    return le16(p) | le16(p + 2) << 16;
}

#define GZ_FTEXT 0x01
#define GZ_FHCRC 0x02
#define GZ_FEXTRA 0x04
#define GZ_FNAME 0x08
#define GZ_FCOMMENT 0x10

void zpz_gz_header(unsigned char h[ZPZ_GZ_HDR_LEN], uint32_t msize, uint32_t isize)
{
    h[0] = 0x1f;
    h[1] = 0x8b;
    h[2] = 8;          /* CM: deflate */
    h[3] = GZ_FEXTRA;  /* FLG */
    put_le32(h + 4, 0); /* MTIME: none (blocks of one stream) */
    h[8] = 0;          /* XFL */
    h[9] = 3;          /* OS: Unix */
    put_le16(h + 10, 12);      /* XLEN */
    h[12] = 'Z';
    h[13] = 'P';
    put_le16(h + 14, 8);       /* LEN of the subfield */
    put_le32(h + 16, msize);
    put_le32(h + 20, isize);
}

int zpz_gz_header_len(const unsigned char *p, size_t n)
{
    size_t k = 10;
    if (n < 10)
        return 0;
    if (p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 || (p[3] & 0xe0) != 0)
        return -EBADMSG;
    unsigned flg = p[3];
    if (flg & GZ_FEXTRA) {
        if (n < k + 2)
            return 0;
        k += 2 + le16(p + k);
    }
    for (unsigned f = GZ_FNAME; f <= GZ_FCOMMENT; f <<= 1) {
        if (!(flg & f))
            continue;
        const unsigned char *z = k < n ? memchr(p + k, 0, n - k) : NULL;
        if (z == NULL)
            return 0;
        k = (size_t)(z - p) + 1;
    }
    if (flg & GZ_FHCRC)
        k += 2;
    if (k > n)
        return 0;
    return k > (size_t)1 << 30 ? -EBADMSG : (int)k;
}

int zpz_gz_parse_zp(const unsigned char *p, size_t n, uint32_t *msize, uint32_t *isize)
{
    if (n < ZPZ_GZ_HDR_LEN || p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 ||
        p[3] != GZ_FEXTRA || le16(p + 10) != 12 || p[12] != 'Z' || p[13] != 'P' ||
        le16(p + 14) != 8)
        return 0;
    *msize = le32(p + 16);
    *isize = le32(p + 20);
    return 1;
}
