/* p11module object model: attribute answers from fixture SPKIs and certificates, C_GetAttributeValue's
 * buffer rules, sensitive attributes, template matching, handle encoding, hostile inputs. */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "p11module/keys.h"
#include "p11module/objects.h"
#include "tests/lib/p11-spki.h"
#include "tests/lib/tap.h"

/* Generated with openssl req/x509 (P-256 CA + leaf, RSA-2048 and Ed25519 self-signed), DER. Their keys are
 * p256_spki (the leaf), rsa2048_spki and ed25519_spki from tests/lib/p11-spki.h. */
static const uint8_t ec_leaf_cert[] = {
        0x30, 0x82, 0x01, 0x14, 0x30, 0x81, 0xbb, 0x02, 0x02, 0x12, 0x34, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x30, 0x15, 0x31, 0x13, 0x30, 0x11, 0x06, 0x03, 0x55, 0x04, 0x03,
        0x0c, 0x0a, 0x46, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x20, 0x43, 0x41, 0x30, 0x1e, 0x17, 0x0d, 0x32,
        0x36, 0x31, 0x31, 0x32, 0x33, 0x30, 0x31, 0x34, 0x37, 0x31, 0x31, 0x5a, 0x17, 0x0d, 0x33, 0x36, 0x31,
        0x31, 0x32, 0x30, 0x30, 0x31, 0x34, 0x37, 0x31, 0x31, 0x5a, 0x30, 0x17, 0x31, 0x15, 0x30, 0x13, 0x06,
        0x03, 0x55, 0x04, 0x03, 0x0c, 0x0c, 0x6c, 0x65, 0x61, 0x66, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,
        0x65, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
        0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0xfe, 0xa8, 0xce, 0x06, 0xd0, 0xaf,
        0x87, 0xf3, 0x87, 0xce, 0x26, 0xef, 0x85, 0x93, 0xad, 0x06, 0x4c, 0xae, 0xe3, 0x0f, 0x36, 0x7c, 0x8a,
        0x3f, 0xbb, 0xac, 0xde, 0xd5, 0x1c, 0x9e, 0xcd, 0x88, 0xda, 0x18, 0xdd, 0x1e, 0xe7, 0xd9, 0x49, 0xfe,
        0x71, 0xb0, 0x56, 0x11, 0xbe, 0x64, 0x9a, 0xea, 0x59, 0x88, 0x7a, 0xc9, 0x45, 0xa4, 0xc7, 0x67, 0xde,
        0xb8, 0xc1, 0xfb, 0x7c, 0x5b, 0x8a, 0x99, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04,
        0x03, 0x02, 0x03, 0x48, 0x00, 0x30, 0x45, 0x02, 0x20, 0x6b, 0xcf, 0x40, 0xcc, 0x24, 0xf7, 0x16, 0x71,
        0x10, 0xcd, 0xc3, 0x26, 0xcd, 0x51, 0x41, 0xa6, 0x79, 0x7c, 0x4a, 0x88, 0x15, 0xe9, 0xee, 0xb1, 0xbb,
        0x8b, 0xe2, 0xd2, 0xd0, 0xce, 0xd7, 0x80, 0x02, 0x21, 0x00, 0xe5, 0xb8, 0x43, 0xfe, 0x41, 0x9b, 0xc1,
        0xb0, 0x8e, 0xb5, 0x4b, 0x32, 0xd5, 0x73, 0xde, 0x5d, 0xeb, 0x7c, 0x9c, 0xd0, 0xa1, 0x9d, 0xc0, 0x6f,
        0x29, 0x62, 0xdf, 0x78, 0xc8, 0x9d, 0x86, 0x95,
};

static const uint8_t ec_ca_cert[] = {
        0x30, 0x82, 0x01, 0x6c, 0x30, 0x82, 0x01, 0x12, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01, 0x30,
        0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x30, 0x15, 0x31, 0x13, 0x30, 0x11,
        0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0a, 0x46, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x20, 0x43, 0x41,
        0x30, 0x1e, 0x17, 0x0d, 0x32, 0x36, 0x31, 0x31, 0x32, 0x33, 0x30, 0x31, 0x34, 0x37, 0x31, 0x31, 0x5a,
        0x17, 0x0d, 0x33, 0x36, 0x31, 0x31, 0x32, 0x30, 0x30, 0x31, 0x34, 0x37, 0x31, 0x31, 0x5a, 0x30, 0x15,
        0x31, 0x13, 0x30, 0x11, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0a, 0x46, 0x69, 0x78, 0x74, 0x75, 0x72,
        0x65, 0x20, 0x43, 0x41, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x58, 0xf8, 0x56,
        0x65, 0x77, 0x86, 0x3a, 0x42, 0x16, 0xdc, 0x09, 0x2f, 0xe3, 0x89, 0xfb, 0xa4, 0x7f, 0x73, 0x11, 0xea,
        0xa6, 0xff, 0x44, 0xe5, 0x66, 0x4d, 0x8c, 0x24, 0xab, 0x10, 0xab, 0x97, 0x5a, 0x63, 0x96, 0x9b, 0x88,
        0x28, 0x20, 0x81, 0x08, 0xe2, 0xa1, 0x78, 0x97, 0x5d, 0x3f, 0x69, 0x1b, 0x22, 0x99, 0xcf, 0xf7, 0x03,
        0x74, 0x24, 0x86, 0x5c, 0x77, 0x53, 0x1b, 0x01, 0xf2, 0x10, 0xa3, 0x53, 0x30, 0x51, 0x30, 0x1d, 0x06,
        0x03, 0x55, 0x1d, 0x0e, 0x04, 0x16, 0x04, 0x14, 0x29, 0x46, 0xea, 0x25, 0x94, 0x62, 0x14, 0x37, 0x8f,
        0x77, 0xe2, 0x12, 0x97, 0x81, 0x7c, 0x91, 0x7b, 0x8a, 0x53, 0x50, 0x30, 0x1f, 0x06, 0x03, 0x55, 0x1d,
        0x23, 0x04, 0x18, 0x30, 0x16, 0x80, 0x14, 0x29, 0x46, 0xea, 0x25, 0x94, 0x62, 0x14, 0x37, 0x8f, 0x77,
        0xe2, 0x12, 0x97, 0x81, 0x7c, 0x91, 0x7b, 0x8a, 0x53, 0x50, 0x30, 0x0f, 0x06, 0x03, 0x55, 0x1d, 0x13,
        0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0xff, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x04, 0x03, 0x02, 0x03, 0x48, 0x00, 0x30, 0x45, 0x02, 0x21, 0x00, 0xba, 0x73, 0x3a, 0xac,
        0xa4, 0x04, 0x32, 0x2a, 0x6b, 0x03, 0x7c, 0xac, 0x09, 0x1f, 0x85, 0x3c, 0xce, 0x6f, 0x6d, 0x27, 0x61,
        0xb0, 0xee, 0x1b, 0x3a, 0x76, 0x43, 0xaf, 0x0e, 0x78, 0x6d, 0x47, 0x02, 0x20, 0x16, 0x70, 0x35, 0x13,
        0x6f, 0xa0, 0xe6, 0xc3, 0xf7, 0xad, 0xf1, 0xcb, 0x33, 0x42, 0x0b, 0xb8, 0x12, 0x43, 0x04, 0x87, 0xaa,
        0xc6, 0xb7, 0x42, 0xe9, 0xdb, 0xa2, 0x5d, 0xb7, 0xc9, 0x19, 0x1e,
};

static const uint8_t rsa_cert[] = {
        0x30, 0x82, 0x02, 0xfa, 0x30, 0x82, 0x01, 0xe2, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x02, 0x30,
        0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00, 0x30, 0x16, 0x31,
        0x14, 0x30, 0x12, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0b, 0x72, 0x73, 0x61, 0x2e, 0x65, 0x78, 0x61,
        0x6d, 0x70, 0x6c, 0x65, 0x30, 0x1e, 0x17, 0x0d, 0x32, 0x36, 0x31, 0x31, 0x32, 0x33, 0x30, 0x31, 0x34,
        0x37, 0x31, 0x32, 0x5a, 0x17, 0x0d, 0x33, 0x36, 0x31, 0x31, 0x32, 0x30, 0x30, 0x31, 0x34, 0x37, 0x31,
        0x32, 0x5a, 0x30, 0x16, 0x31, 0x14, 0x30, 0x12, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0b, 0x72, 0x73,
        0x61, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09,
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00, 0x30,
        0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0x88, 0x46, 0x8a, 0xa1, 0x8d, 0xe7, 0x8b, 0x44, 0x66,
        0xe1, 0x4c, 0xba, 0xf6, 0x71, 0x94, 0xb3, 0x47, 0xed, 0xda, 0x89, 0x87, 0x26, 0xe9, 0x52, 0xc9, 0x3a,
        0x99, 0x3f, 0xe1, 0x80, 0x2f, 0x06, 0x98, 0x61, 0xd7, 0x35, 0x1b, 0xac, 0xb6, 0xbf, 0x08, 0x8c, 0x81,
        0x80, 0x24, 0x1a, 0xdf, 0x57, 0x51, 0x92, 0xa5, 0xf8, 0x1e, 0xe1, 0x66, 0x11, 0x7f, 0x9e, 0x66, 0x12,
        0x61, 0xba, 0x8f, 0xb4, 0xaf, 0x6f, 0xb1, 0x6a, 0xc6, 0x2f, 0x89, 0x39, 0xa5, 0xbe, 0x2c, 0x43, 0x9b,
        0xa1, 0xa4, 0xb3, 0x5c, 0xe6, 0xc1, 0x5d, 0x27, 0x2e, 0x17, 0x79, 0x24, 0xb4, 0x2d, 0x1f, 0x46, 0x0c,
        0x5c, 0xb4, 0xac, 0x22, 0x5b, 0xe2, 0xdc, 0x37, 0x05, 0x86, 0x12, 0x2d, 0xa5, 0x11, 0xd5, 0xb3, 0x85,
        0xd3, 0x9b, 0x16, 0x72, 0x50, 0x49, 0x46, 0xe5, 0x0d, 0x86, 0x92, 0x2b, 0x78, 0xe5, 0xc7, 0xf9, 0xdc,
        0xfb, 0xf9, 0x01, 0x7c, 0x18, 0xcf, 0xad, 0xae, 0x19, 0xe6, 0x42, 0xd4, 0x5e, 0x9c, 0xfd, 0x70, 0xb3,
        0x41, 0xf1, 0x52, 0x64, 0xe0, 0xd0, 0x5f, 0xc6, 0xe8, 0xf6, 0x6a, 0x88, 0xbd, 0x8d, 0xe3, 0xab, 0x48,
        0x7d, 0x0a, 0x21, 0xba, 0x6c, 0xb7, 0x69, 0x5c, 0xff, 0x19, 0xcb, 0xa2, 0x57, 0x48, 0x6e, 0x0d, 0x63,
        0x9f, 0x75, 0x1b, 0x50, 0x3f, 0x0e, 0xb0, 0x68, 0xa2, 0x44, 0x5d, 0xed, 0x18, 0xa9, 0x01, 0xd9, 0xe1,
        0x2d, 0xe1, 0x84, 0x9a, 0xae, 0xd2, 0x50, 0xe8, 0xf2, 0x37, 0x32, 0xcb, 0x35, 0xb5, 0x6d, 0xf0, 0x85,
        0x7e, 0x25, 0x7b, 0x94, 0xfd, 0x63, 0xc6, 0xe3, 0x95, 0xd8, 0x97, 0x57, 0x05, 0xba, 0x15, 0x4b, 0xec,
        0xa2, 0xe0, 0x5d, 0x28, 0x7a, 0x0c, 0xd4, 0x09, 0xbe, 0x87, 0x82, 0xcb, 0xa1, 0x27, 0xd6, 0x51, 0x82,
        0xd4, 0x0f, 0x07, 0xa3, 0x8e, 0xfa, 0x2a, 0x45, 0x6b, 0x02, 0x03, 0x01, 0x00, 0x01, 0xa3, 0x53, 0x30,
        0x51, 0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04, 0x16, 0x04, 0x14, 0x7d, 0x98, 0xd3, 0x6a, 0x52,
        0x2a, 0xc4, 0xc9, 0xf6, 0xbc, 0x15, 0x9c, 0x08, 0x0b, 0xc9, 0x30, 0x84, 0xaf, 0x2b, 0x3c, 0x30, 0x1f,
        0x06, 0x03, 0x55, 0x1d, 0x23, 0x04, 0x18, 0x30, 0x16, 0x80, 0x14, 0x7d, 0x98, 0xd3, 0x6a, 0x52, 0x2a,
        0xc4, 0xc9, 0xf6, 0xbc, 0x15, 0x9c, 0x08, 0x0b, 0xc9, 0x30, 0x84, 0xaf, 0x2b, 0x3c, 0x30, 0x0f, 0x06,
        0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0xff, 0x30, 0x0d, 0x06,
        0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00, 0x03, 0x82, 0x01, 0x01, 0x00,
        0x42, 0xa2, 0x23, 0x7e, 0x2a, 0xa4, 0x9b, 0xcd, 0x19, 0xb1, 0xbe, 0xb6, 0xae, 0x21, 0x06, 0x86, 0xc3,
        0x73, 0xa5, 0x3c, 0x17, 0xc2, 0xb8, 0xe2, 0xfc, 0xdc, 0xde, 0x92, 0x70, 0xb2, 0x5c, 0xa1, 0x16, 0xa8,
        0x38, 0x16, 0xe0, 0xa8, 0x2e, 0x54, 0x73, 0xa1, 0x8d, 0x8c, 0x79, 0x6b, 0x77, 0x58, 0xac, 0xff, 0x5c,
        0xb4, 0xdf, 0x48, 0x53, 0x03, 0x9b, 0x2a, 0xa8, 0xfe, 0x28, 0x23, 0xfc, 0xa0, 0x92, 0x72, 0xbe, 0x97,
        0xd7, 0x9b, 0x4c, 0xd1, 0x16, 0xf4, 0xb0, 0x94, 0x9a, 0x1c, 0x1d, 0x9d, 0x59, 0xbd, 0x89, 0x04, 0x1c,
        0x1f, 0x23, 0x9f, 0xa7, 0xaa, 0xa8, 0x3c, 0x1c, 0xbb, 0x3f, 0xe3, 0x71, 0x9a, 0xdf, 0xc2, 0xf2, 0x95,
        0xe3, 0x1f, 0xa3, 0xd1, 0x03, 0xf9, 0x4e, 0x00, 0xc9, 0x0f, 0xb0, 0xf5, 0x0c, 0xd4, 0x72, 0xef, 0xed,
        0x39, 0x5e, 0x1c, 0x34, 0x4a, 0x22, 0xcd, 0x70, 0x84, 0xd7, 0x16, 0x9e, 0xa4, 0x82, 0x90, 0xff, 0xd1,
        0xd4, 0xe7, 0x02, 0xeb, 0xa3, 0x1b, 0xf1, 0x0d, 0xb2, 0x8a, 0x17, 0xf6, 0xf1, 0x1f, 0xd3, 0x2b, 0x56,
        0xd7, 0x4a, 0xd9, 0x4f, 0x32, 0xb1, 0xf0, 0xac, 0xeb, 0xd1, 0x7d, 0x5f, 0x28, 0xef, 0x75, 0x57, 0xd5,
        0xb7, 0xbd, 0x77, 0x66, 0x3b, 0xe2, 0xb7, 0xe7, 0x2b, 0x51, 0xcd, 0x0e, 0x29, 0x50, 0x4d, 0xa8, 0xa6,
        0x9b, 0x6b, 0x90, 0xb4, 0x2c, 0xda, 0xe3, 0x11, 0x65, 0x46, 0x2e, 0x2f, 0x3a, 0x4d, 0x1b, 0xa2, 0x06,
        0x48, 0x95, 0x2a, 0xc1, 0xf1, 0x6e, 0x47, 0xca, 0xbd, 0x16, 0xae, 0x60, 0x90, 0x48, 0x40, 0x2a, 0xbc,
        0x06, 0x8d, 0xbe, 0x17, 0xe0, 0xe1, 0xf1, 0xaa, 0xbd, 0xca, 0x4b, 0x6e, 0xfa, 0xc1, 0x71, 0x0b, 0x49,
        0x69, 0x34, 0x10, 0x18, 0x0a, 0x1a, 0x21, 0xe6, 0x55, 0x37, 0xf2, 0xaf, 0x5a, 0x47, 0x4b, 0x37, 0x9d,
        0x83,
};

static const uint8_t ed_cert[] = {
        0x30, 0x82, 0x01, 0x2b, 0x30, 0x81, 0xde, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03, 0x30, 0x05,
        0x06, 0x03, 0x2b, 0x65, 0x70, 0x30, 0x15, 0x31, 0x13, 0x30, 0x11, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c,
        0x0a, 0x65, 0x64, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x30, 0x1e, 0x17, 0x0d, 0x32, 0x36,
        0x31, 0x31, 0x32, 0x33, 0x30, 0x31, 0x34, 0x37, 0x31, 0x32, 0x5a, 0x17, 0x0d, 0x33, 0x36, 0x31, 0x31,
        0x32, 0x30, 0x30, 0x31, 0x34, 0x37, 0x31, 0x32, 0x5a, 0x30, 0x15, 0x31, 0x13, 0x30, 0x11, 0x06, 0x03,
        0x55, 0x04, 0x03, 0x0c, 0x0a, 0x65, 0x64, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x30, 0x2a,
        0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 0xb2, 0xa1, 0x00, 0xbf, 0xc4, 0x48, 0xe9,
        0x0e, 0xa7, 0xc8, 0xd7, 0x98, 0x88, 0x92, 0x56, 0x79, 0x53, 0xd5, 0xfb, 0x30, 0xc4, 0xe0, 0xf8, 0xa6,
        0xa9, 0x6d, 0x34, 0x97, 0x28, 0x16, 0x9a, 0x9a, 0xa3, 0x53, 0x30, 0x51, 0x30, 0x1d, 0x06, 0x03, 0x55,
        0x1d, 0x0e, 0x04, 0x16, 0x04, 0x14, 0x05, 0x88, 0xdd, 0xa8, 0x6b, 0xeb, 0x17, 0x87, 0x55, 0xc2, 0x06,
        0x3b, 0x5f, 0x6e, 0xe0, 0xd8, 0x57, 0xe6, 0xbc, 0xfe, 0x30, 0x1f, 0x06, 0x03, 0x55, 0x1d, 0x23, 0x04,
        0x18, 0x30, 0x16, 0x80, 0x14, 0x05, 0x88, 0xdd, 0xa8, 0x6b, 0xeb, 0x17, 0x87, 0x55, 0xc2, 0x06, 0x3b,
        0x5f, 0x6e, 0xe0, 0xd8, 0x57, 0xe6, 0xbc, 0xfe, 0x30, 0x0f, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01,
        0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0xff, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x41,
        0x00, 0x3c, 0xc3, 0x42, 0x46, 0xef, 0xfd, 0x1b, 0x09, 0x66, 0x80, 0x51, 0xb3, 0x21, 0x7d, 0x7c, 0x78,
        0x09, 0xea, 0xf9, 0x1e, 0x60, 0x7a, 0x36, 0xb9, 0x10, 0x43, 0x00, 0xc5, 0xd3, 0xf1, 0xe2, 0xc3, 0x76,
        0xe3, 0x9b, 0x86, 0xb8, 0x8c, 0xdb, 0x28, 0x01, 0xf7, 0x07, 0x79, 0x41, 0x56, 0xad, 0x21, 0x21, 0x62,
        0xbc, 0xdd, 0x02, 0xf0, 0xa3, 0x0d, 0xa3, 0xd6, 0x94, 0xa5, 0xea, 0xb1, 0xa5, 0x0c,
};

#define SLOT   0x6728e059u
#define EC_ID  1
#define RSA_ID 0x102
#define ED_ID  7

static const uint8_t p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t ed25519_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

static struct rpc_token_info *fixture_info(void) {
        static struct rpc_token_info ti;

        ti = (struct rpc_token_info){ .slot = SLOT, .generation = 42, .n_keys_total = 3, .n_keys = 3 };
        ti.keys[0] = (struct rpc_key_info){
                .id = EC_ID,
                .label = { (const uint8_t *) "web", 3 },
                .type = RPC_KEY_EC,
                .bits = 256,
                .spki = { p256_spki, sizeof(p256_spki) },
                .n_certs = 2,
                .certs = { { ec_leaf_cert, sizeof(ec_leaf_cert) }, { ec_ca_cert, sizeof(ec_ca_cert) } },
        };
        ti.keys[1] = (struct rpc_key_info){
                .id = RSA_ID,
                .label = { (const uint8_t *) "rsa", 3 },
                .type = RPC_KEY_RSA,
                .bits = 2048,
                .spki = { rsa2048_spki, sizeof(rsa2048_spki) },
                .n_certs = 1,
                .certs = { { rsa_cert, sizeof(rsa_cert) } },
        };
        ti.keys[2] = (struct rpc_key_info){
                .id = ED_ID,
                .label = { (const uint8_t *) "ed", 2 },
                .type = RPC_KEY_ED25519,
                .spki = { ed25519_spki, sizeof(ed25519_spki) },
                .n_certs = 1,
                .certs = { { ed_cert, sizeof(ed_cert) } },
        };
        return &ti;
}

static struct p11_objects *fixture(void) {
        struct p11_objects *o = NULL;

        if (p11_objects_build(fixture_info(), &o) < 0)
                return NULL;
        return o;
}

static struct p11_obj obj(const struct p11_objects *o, uint32_t id, enum p11_obj_kind kind, unsigned cert) {
        return (struct p11_obj){ p11_objects_find_key(o, id), kind, cert };
}

/* Reads one attribute into buf; returns the CK_RV and sets *len. */
static CK_RV get(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t, void *buf, size_t size, CK_ULONG *len) {
        CK_ATTRIBUTE a = { t, buf, size };
        CK_RV rv = p11_obj_get_attributes(o, &a, 1);

        *len = a.ulValueLen;
        return rv;
}

static CK_ULONG get_ulong(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t) {
        CK_ULONG v = 0xdead, len;

        return get(o, t, &v, sizeof(v), &len) == CKR_OK && len == sizeof(v) ? v : 0xdead;
}

static int get_bool(const struct p11_obj *o, CK_ATTRIBUTE_TYPE t) {
        CK_BBOOL v = 2;
        CK_ULONG len;

        return get(o, t, &v, sizeof(v), &len) == CKR_OK && len == 1 ? v : -1;
}

/* ---- helpers ---- */

static void test_handles(void) {
        static const struct {
                uint32_t slot, id;
                enum p11_obj_kind kind;
                unsigned cert;
        } rows[] = {
                { 0, 0, P11_OBJ_PRIVATE, 0 },
                { 1, 1, P11_OBJ_PUBLIC, 0 },
                { SLOT, 0xffff, P11_OBJ_CERT, 7 },
                { 0x7fffffff, 0x102, P11_OBJ_CERT, 0 },
        };
        struct p11_handle p;

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                CK_OBJECT_HANDLE h = p11_handle_make(rows[i].slot, rows[i].id, rows[i].kind, rows[i].cert);

                ASSERT_NE(h, CK_INVALID_HANDLE);
                ASSERT_EQ(h, p11_handle_make(rows[i].slot, rows[i].id, rows[i].kind,
                                             rows[i].cert)); /* stable */
                ASSERT_OK(p11_handle_parse(h, &p));
                ASSERT_EQ(p.slot, rows[i].slot);
                ASSERT_EQ(p.key_id, rows[i].id);
                ASSERT_EQ(p.kind, rows[i].kind);
                ASSERT_EQ(p.cert, rows[i].cert);
        }
        /* distinct objects, distinct handles */
        ASSERT_NE(p11_handle_make(SLOT, 1, P11_OBJ_PRIVATE, 0), p11_handle_make(SLOT, 1, P11_OBJ_PUBLIC, 0));
        ASSERT_NE(p11_handle_make(SLOT, 1, P11_OBJ_CERT, 0), p11_handle_make(SLOT, 1, P11_OBJ_CERT, 1));
        ASSERT_NE(p11_handle_make(SLOT, 1, P11_OBJ_CERT, 0), p11_handle_make(SLOT + 1, 1, P11_OBJ_CERT, 0));
        ASSERT_NE(p11_handle_make(SLOT, 1, P11_OBJ_CERT, 0), p11_handle_make(SLOT, 2, P11_OBJ_CERT, 0));
        /* garbage */
        ASSERT_FAIL(p11_handle_parse(0, &p));
        ASSERT_FAIL(p11_handle_parse(0x40, &p)); /* kind 4 */
        ASSERT_FAIL(p11_handle_parse(0x11, &p)); /* private key with a cert index */
        ASSERT_FAIL(p11_handle_parse(0x38, &p)); /* cert index 8 */
        ASSERT_FAIL(p11_handle_parse((CK_OBJECT_HANDLE) -1, &p));
}

static void test_key_id_bytes(void) {
        uint8_t b[4];

        ASSERT_EQ(p11_key_id_bytes(0, b), 1);
        ASSERT_EQ(b[0], 0);
        ASSERT_EQ(p11_key_id_bytes(1, b), 1);
        ASSERT_EQ(b[0], 1);
        ASSERT_EQ(p11_key_id_bytes(0x102, b), 2);
        ASSERT_MEMEQ(b, "\x01\x02", 2);
        ASSERT_EQ(p11_key_id_bytes(0xffff, b), 2);
        ASSERT_MEMEQ(b, "\xff\xff", 2);
}

static void test_octet_string(void) {
        static uint8_t data[300];
        struct p11_blob b;

        ASSERT_OK(p11_der_octet_string(data, 32, &b));
        ASSERT_EQ(b.len, 34);
        ASSERT_MEMEQ(b.ptr, "\x04\x20", 2);
        free(b.ptr);
        ASSERT_OK(p11_der_octet_string(data, 133, &b));
        ASSERT_EQ(b.len, 136);
        ASSERT_MEMEQ(b.ptr, "\x04\x81\x85", 3);
        free(b.ptr);
        ASSERT_OK(p11_der_octet_string(data, 300, &b));
        ASSERT_EQ(b.len, 304);
        ASSERT_MEMEQ(b.ptr, "\x04\x82\x01\x2c", 4);
        free(b.ptr);
}

/* ---- the fixture token ---- */

static void test_build(void) {
        struct p11_objects *o = fixture();
        const struct p11_key *k;

        ASSERT_TRUE(o);
        ASSERT_EQ(o->n_keys, 3);
        ASSERT_EQ(o->generation, 42);
        k = p11_objects_find_key(o, EC_ID);
        ASSERT_TRUE(k);
        ASSERT_EQ(k->n_certs, 2);
        ASSERT_EQ(k->sig_len, 64);
        ASSERT_TRUE(p11_objects_find_key(o, 99) == NULL);
        p11_objects_free(o);
}

static void test_private_key(void) {
        struct p11_objects *o = fixture();
        struct p11_obj p = obj(o, EC_ID, P11_OBJ_PRIVATE, 0);
        uint8_t buf[256];
        CK_ULONG len;

        ASSERT_TRUE(o);
        ASSERT_EQ(get_ulong(&p, CKA_CLASS), CKO_PRIVATE_KEY);
        ASSERT_EQ(get_ulong(&p, CKA_KEY_TYPE), CKK_EC);
        ASSERT_EQ(get_bool(&p, CKA_TOKEN), CK_TRUE);
        ASSERT_EQ(get_bool(&p, CKA_PRIVATE), CK_TRUE);
        ASSERT_EQ(get_bool(&p, CKA_SENSITIVE), CK_TRUE);
        ASSERT_EQ(get_bool(&p, CKA_ALWAYS_SENSITIVE), CK_TRUE);
        ASSERT_EQ(get_bool(&p, CKA_NEVER_EXTRACTABLE), CK_TRUE);
        ASSERT_EQ(get_bool(&p, CKA_EXTRACTABLE), CK_FALSE);
        ASSERT_EQ(get_bool(&p, CKA_SIGN), CK_TRUE);
        ASSERT_EQ(get_bool(&p, CKA_DECRYPT), CK_FALSE); /* EC */
        ASSERT_EQ(get_bool(&p, CKA_MODIFIABLE), CK_FALSE);
        ASSERT_EQ(get_bool(&p, CKA_ALWAYS_AUTHENTICATE), CK_FALSE);
        ASSERT_EQ(get(&p, CKA_ID, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 1);
        ASSERT_EQ(buf[0], 0x01);
        ASSERT_EQ(get(&p, CKA_LABEL, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 3);
        ASSERT_MEMEQ(buf, "web", 3);
        ASSERT_EQ(get(&p, CKA_EC_PARAMS, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, sizeof(p256_oid));
        ASSERT_MEMEQ(buf, p256_oid, sizeof(p256_oid));
        /* EC_POINT: DER OCTET STRING around the SPKI's uncompressed point (its last 65 bytes) */
        ASSERT_EQ(get(&p, CKA_EC_POINT, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 67);
        ASSERT_MEMEQ(buf, "\x04\x41\x04", 3);
        ASSERT_MEMEQ(buf + 2, p256_spki + sizeof(p256_spki) - 65, 65);
        ASSERT_EQ(get(&p, CKA_PUBLIC_KEY_INFO, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, sizeof(p256_spki));
        ASSERT_MEMEQ(buf, p256_spki, len);
        /* the private value is sensitive, not missing */
        ASSERT_EQ(get(&p, CKA_VALUE, buf, sizeof(buf), &len), CKR_ATTRIBUTE_SENSITIVE);
        ASSERT_EQ(len, CK_UNAVAILABLE_INFORMATION);
        p11_objects_free(o);
}

static void test_rsa(void) {
        struct p11_objects *o = fixture();
        struct p11_obj priv = obj(o, RSA_ID, P11_OBJ_PRIVATE, 0), pub = obj(o, RSA_ID, P11_OBJ_PUBLIC, 0);
        static const CK_ATTRIBUTE_TYPE secret[] = { CKA_PRIVATE_EXPONENT, CKA_PRIME_1,    CKA_PRIME_2,
                                                    CKA_EXPONENT_1,       CKA_EXPONENT_2, CKA_COEFFICIENT };
        const unsigned char *p = rsa2048_spki;
        BIGNUM *n = NULL;
        EVP_PKEY *pk;
        uint8_t buf[512], expect[512];
        CK_ULONG len;

        ASSERT_TRUE(o);
        ASSERT_EQ(get_ulong(&priv, CKA_KEY_TYPE), CKK_RSA);
        ASSERT_EQ(get_bool(&priv, CKA_DECRYPT), CK_TRUE);
        ASSERT_EQ(get_ulong(&pub, CKA_MODULUS_BITS), 2048);
        ASSERT_EQ(get(&pub, CKA_PUBLIC_EXPONENT, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 3);
        ASSERT_MEMEQ(buf, "\x01\x00\x01", 3);
        /* the modulus as OpenSSL reads it from the same SPKI, on the private and the public object */
        pk = d2i_PUBKEY(NULL, &p, sizeof(rsa2048_spki));
        ASSERT_TRUE(pk);
        ASSERT_TRUE(EVP_PKEY_get_bn_param(pk, "n", &n) > 0);
        ASSERT_EQ(BN_bn2bin(n, expect), 256);
        BN_free(n);
        EVP_PKEY_free(pk);
        ASSERT_EQ(get(&priv, CKA_MODULUS, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 256);
        ASSERT_MEMEQ(buf, expect, 256);
        ASSERT_EQ(get(&pub, CKA_MODULUS, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_MEMEQ(buf, expect, 256);
        ASSERT_EQ(get(&priv, CKA_ID, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 2);
        ASSERT_MEMEQ(buf, "\x01\x02", 2);
        for (size_t i = 0; i < ELEMENTSOF(secret); i++) {
                len = 0;
                ASSERT_EQ(get(&priv, secret[i], buf, sizeof(buf), &len), CKR_ATTRIBUTE_SENSITIVE);
                ASSERT_EQ(len, CK_UNAVAILABLE_INFORMATION);
                /* on the public key they simply do not exist */
                ASSERT_EQ(get(&pub, secret[i], buf, sizeof(buf), &len), CKR_ATTRIBUTE_TYPE_INVALID);
        }
        ASSERT_EQ(get(&priv, CKA_EC_POINT, buf, sizeof(buf), &len), CKR_ATTRIBUTE_TYPE_INVALID);
        p11_objects_free(o);
}

static void test_ed25519(void) {
        struct p11_objects *o = fixture();
        struct p11_obj pub = obj(o, ED_ID, P11_OBJ_PUBLIC, 0);
        uint8_t buf[64];
        CK_ULONG len;

        ASSERT_TRUE(o);
        ASSERT_EQ(get_ulong(&pub, CKA_KEY_TYPE), CKK_EC_EDWARDS);
        ASSERT_EQ(get_ulong(&pub, CKA_CLASS), CKO_PUBLIC_KEY);
        ASSERT_EQ(get_bool(&pub, CKA_PRIVATE), CK_FALSE);
        ASSERT_EQ(get(&pub, CKA_EC_PARAMS, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, sizeof(ed25519_oid));
        ASSERT_MEMEQ(buf, ed25519_oid, sizeof(ed25519_oid));
        ASSERT_EQ(get(&pub, CKA_EC_POINT, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 34);
        ASSERT_MEMEQ(buf, "\x04\x20", 2);
        ASSERT_MEMEQ(buf + 2, ed25519_spki + sizeof(ed25519_spki) - 32, 32);
        ASSERT_EQ(p11_objects_find_key(o, ED_ID)->sig_len, 64);
        p11_objects_free(o);
}

static void test_certificates(void) {
        struct p11_objects *o = fixture();
        struct p11_obj leaf = obj(o, EC_ID, P11_OBJ_CERT, 0), ca = obj(o, EC_ID, P11_OBJ_CERT, 1);
        const unsigned char *p = ec_leaf_cert;
        uint8_t buf[1024], md[EVP_MAX_MD_SIZE];
        CK_ULONG len;
        X509 *x;

        ASSERT_TRUE(o);
        x = d2i_X509(NULL, &p, sizeof(ec_leaf_cert));
        ASSERT_TRUE(x);
        ASSERT_EQ(get_ulong(&leaf, CKA_CLASS), CKO_CERTIFICATE);
        ASSERT_EQ(get_ulong(&leaf, CKA_CERTIFICATE_TYPE), CKC_X_509);
        ASSERT_EQ(get_ulong(&leaf, CKA_CERTIFICATE_CATEGORY), 1);
        ASSERT_EQ(get_ulong(&ca, CKA_CERTIFICATE_CATEGORY), 2);
        ASSERT_EQ(get_bool(&leaf, CKA_PRIVATE), CK_FALSE);
        ASSERT_EQ(get_bool(&leaf, CKA_TRUSTED), CK_FALSE);
        ASSERT_EQ(get(&leaf, CKA_VALUE, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, sizeof(ec_leaf_cert));
        ASSERT_MEMEQ(buf, ec_leaf_cert, len);
        /* serial 0x1234 as a DER INTEGER */
        ASSERT_EQ(get(&leaf, CKA_SERIAL_NUMBER, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 4);
        ASSERT_MEMEQ(buf, "\x02\x02\x12\x34", 4);
        ASSERT_EQ(get(&leaf, CKA_SUBJECT, buf, sizeof(buf), &len), CKR_OK);
        p = buf;
        {
                X509_NAME *n = d2i_X509_NAME(NULL, &p, (long) len);

                ASSERT_TRUE(n);
                ASSERT_EQ(X509_NAME_cmp(n, X509_get_subject_name(x)), 0);
                X509_NAME_free(n);
        }
        ASSERT_EQ(get(&leaf, CKA_ISSUER, buf, sizeof(buf), &len), CKR_OK);
        p = buf;
        {
                X509_NAME *n = d2i_X509_NAME(NULL, &p, (long) len);

                ASSERT_TRUE(n);
                ASSERT_EQ(X509_NAME_cmp(n, X509_get_issuer_name(x)), 0);
                X509_NAME_free(n);
        }
        /* the key objects' CKA_SUBJECT is the leaf's */
        {
                struct p11_obj priv = obj(o, EC_ID, P11_OBJ_PRIVATE, 0);
                uint8_t subj[256], leaf_subj[256];
                CK_ULONG slen, leaf_len;

                ASSERT_EQ(get(&leaf, CKA_SUBJECT, leaf_subj, sizeof(leaf_subj), &leaf_len), CKR_OK);
                ASSERT_EQ(get(&priv, CKA_SUBJECT, subj, sizeof(subj), &slen), CKR_OK);
                ASSERT_EQ(slen, leaf_len);
                ASSERT_MEMEQ(subj, leaf_subj, slen);
        }
        ASSERT_EQ(get(&leaf, CKA_CHECK_VALUE, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 3);
        ASSERT_TRUE(EVP_Digest(ec_leaf_cert, sizeof(ec_leaf_cert), md, NULL, EVP_sha1(), NULL) > 0);
        ASSERT_MEMEQ(buf, md, 3);
        /* the leaf carries the key id; the CA does not (or "id=%01;type=cert" would find it) */
        ASSERT_EQ(get(&leaf, CKA_ID, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 1);
        ASSERT_EQ(buf[0], 1);
        ASSERT_EQ(get(&ca, CKA_ID, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 20);
        ASSERT_EQ(get(&leaf, CKA_LABEL, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_MEMEQ(buf, "web", 3);
        ASSERT_EQ(get(&ca, CKA_LABEL, buf, sizeof(buf), &len), CKR_OK);
        ASSERT_EQ(len, 8);
        ASSERT_MEMEQ(buf, "web CA 1", 8);
        ASSERT_EQ(get(&leaf, CKA_SIGN, buf, sizeof(buf), &len), CKR_ATTRIBUTE_TYPE_INVALID);
        X509_free(x);
        p11_objects_free(o);
}

/* ---- C_GetAttributeValue rules ---- */

static void test_buffer_rules(void) {
        struct p11_objects *o = fixture();
        struct p11_obj cert = obj(o, EC_ID, P11_OBJ_CERT, 0);
        uint8_t small[8], big[1024];
        CK_ULONG len;

        ASSERT_TRUE(o);
        /* NULL buffer: the size */
        ASSERT_EQ(get(&cert, CKA_VALUE, NULL, 0, &len), CKR_OK);
        ASSERT_EQ(len, sizeof(ec_leaf_cert));
        /* exactly big enough */
        ASSERT_EQ(get(&cert, CKA_VALUE, big, sizeof(ec_leaf_cert), &len), CKR_OK);
        ASSERT_EQ(len, sizeof(ec_leaf_cert));
        /* bigger: the real length comes back */
        ASSERT_EQ(get(&cert, CKA_VALUE, big, sizeof(big), &len), CKR_OK);
        ASSERT_EQ(len, sizeof(ec_leaf_cert));
        /* one byte short */
        ASSERT_EQ(get(&cert, CKA_VALUE, big, sizeof(ec_leaf_cert) - 1, &len), CKR_BUFFER_TOO_SMALL);
        ASSERT_EQ(len, CK_UNAVAILABLE_INFORMATION);
        ASSERT_EQ(get(&cert, CKA_VALUE, small, sizeof(small), &len), CKR_BUFFER_TOO_SMALL);
        /* a zero-length value */
        ASSERT_EQ(get(&cert, CKA_START_DATE, NULL, 0, &len), CKR_OK);
        ASSERT_EQ(len, 0);
        p11_objects_free(o);
}

static void test_template_mixed(void) {
        struct p11_objects *o = fixture();
        struct p11_obj priv = obj(o, RSA_ID, P11_OBJ_PRIVATE, 0);
        CK_OBJECT_CLASS cls = 0;
        CK_BYTE modulus[8], id[8];
        CK_ATTRIBUTE t[] = {
                { CKA_CLASS, &cls, sizeof(cls) }, { CKA_PRIVATE_EXPONENT, NULL, 0 },
                { 0x80001234UL, NULL, 0 },        { CKA_MODULUS, modulus, sizeof(modulus) },
                { CKA_ID, id, sizeof(id) },
        };

        ASSERT_TRUE(o);
        /* every attribute is processed; the call reports a problem */
        ASSERT_NE(p11_obj_get_attributes(&priv, t, ELEMENTSOF(t)), CKR_OK);
        ASSERT_EQ(cls, CKO_PRIVATE_KEY);
        ASSERT_EQ(t[0].ulValueLen, sizeof(cls));
        ASSERT_EQ(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        ASSERT_EQ(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        ASSERT_EQ(t[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        ASSERT_EQ(t[4].ulValueLen, 2);
        ASSERT_MEMEQ(id, "\x01\x02", 2);
        /* one at a time, each gives its own code (lengths reset: the call overwrote them) */
        t[3].ulValueLen = sizeof(modulus);
        ASSERT_EQ(p11_obj_get_attributes(&priv, &t[1], 1), CKR_ATTRIBUTE_SENSITIVE);
        ASSERT_EQ(p11_obj_get_attributes(&priv, &t[2], 1), CKR_ATTRIBUTE_TYPE_INVALID);
        ASSERT_EQ(p11_obj_get_attributes(&priv, &t[3], 1), CKR_BUFFER_TOO_SMALL);
        ASSERT_EQ(p11_obj_get_attributes(&priv, t, 0), CKR_OK);
        p11_objects_free(o);
}

static void test_allowed_mechanisms(void) {
        struct p11_objects *o = fixture();
        struct p11_obj ec = obj(o, EC_ID, P11_OBJ_PRIVATE, 0), ed = obj(o, ED_ID, P11_OBJ_PRIVATE, 0);
        CK_MECHANISM_TYPE m[32];
        CK_ULONG len;

        ASSERT_TRUE(o);
        ASSERT_EQ(get(&ec, CKA_ALLOWED_MECHANISMS, m, sizeof(m), &len), CKR_OK);
        ASSERT_EQ(len, 6 * sizeof(CK_MECHANISM_TYPE));
        ASSERT_EQ(m[0], CKM_ECDSA);
        ASSERT_EQ(get(&ed, CKA_ALLOWED_MECHANISMS, m, sizeof(m), &len), CKR_OK);
        ASSERT_EQ(len, sizeof(CK_MECHANISM_TYPE));
        ASSERT_EQ(m[0], CKM_EDDSA);
        p11_objects_free(o);
}

/* ---- finding and resolving ---- */

static size_t find(const struct p11_objects *o, bool logged_in, CK_ATTRIBUTE *t, CK_ULONG n,
                   CK_OBJECT_HANDLE *out) {
        return p11_objects_find(o, SLOT, logged_in, t, n, out, P11_MAX_OBJECTS);
}

static void test_find(void) {
        struct p11_objects *o = fixture();
        CK_OBJECT_HANDLE h[P11_MAX_OBJECTS];
        CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, cert = CKO_CERTIFICATE;
        CK_KEY_TYPE rsa = CKK_RSA;
        CK_BBOOL yes = CK_TRUE;
        CK_ATTRIBUTE by_class[] = { { CKA_CLASS, &priv, sizeof(priv) } };
        CK_ATTRIBUTE certs[] = { { CKA_CLASS, &cert, sizeof(cert) } };
        CK_ATTRIBUTE by_id[] = { { CKA_ID, "\x01", 1 } };
        CK_ATTRIBUTE by_label[] = { { CKA_LABEL, "rsa", 3 }, { CKA_KEY_TYPE, &rsa, sizeof(rsa) } };
        CK_ATTRIBUTE sign[] = { { CKA_SIGN, &yes, sizeof(yes) } };
        CK_ATTRIBUTE prefix[] = { { CKA_LABEL, "rs", 2 } };
        CK_ATTRIBUTE secret[] = { { CKA_PRIVATE_EXPONENT, "x", 1 } };

        ASSERT_TRUE(o);
        /* everything: 3 private, 3 public, 4 certificates; private keys only after login */
        ASSERT_EQ(find(o, false, NULL, 0, h), 7);
        ASSERT_EQ(find(o, true, NULL, 0, h), 10);
        ASSERT_EQ(find(o, false, by_class, 1, h), 0);
        ASSERT_EQ(find(o, true, by_class, 1, h), 3);
        ASSERT_EQ(h[0], p11_handle_make(SLOT, EC_ID, P11_OBJ_PRIVATE, 0));
        ASSERT_EQ(find(o, false, certs, 1, h), 4);
        /* id=%01: private, public and leaf certificate of key 1, never its CA */
        ASSERT_EQ(find(o, true, by_id, 1, h), 3);
        ASSERT_EQ(h[2], p11_handle_make(SLOT, EC_ID, P11_OBJ_CERT, 0));
        ASSERT_EQ(find(o, true, by_label, 2, h), 2);
        ASSERT_EQ(find(o, true, sign, 1, h), 3);
        ASSERT_EQ(find(o, true, prefix, 1, h), 0);
        ASSERT_EQ(find(o, true, secret, 1, h), 0);
        ASSERT_EQ(p11_objects_find(o, SLOT, true, NULL, 0, h, 2), 2); /* bounded */
        ASSERT_EQ(p11_objects_find(NULL, SLOT, true, NULL, 0, h, 2), 0);
        p11_objects_free(o);
}

static void test_resolve(void) {
        struct p11_objects *o = fixture();
        struct p11_obj r;

        ASSERT_TRUE(o);
        ASSERT_OK(p11_obj_resolve(o, SLOT, p11_handle_make(SLOT, EC_ID, P11_OBJ_PUBLIC, 0), false, &r));
        ASSERT_EQ(r.kind, P11_OBJ_PUBLIC);
        ASSERT_EQ(r.key->id, EC_ID);
        ASSERT_OK(p11_obj_resolve(o, SLOT, p11_handle_make(SLOT, EC_ID, P11_OBJ_CERT, 1), false, &r));
        ASSERT_EQ(r.cert, 1);
        /* private keys are invisible before login */
        ASSERT_ERR(p11_obj_resolve(o, SLOT, p11_handle_make(SLOT, EC_ID, P11_OBJ_PRIVATE, 0), false, &r),
                   -ENOENT);
        ASSERT_OK(p11_obj_resolve(o, SLOT, p11_handle_make(SLOT, EC_ID, P11_OBJ_PRIVATE, 0), true, &r));
        /* another slot's handle, an unknown key, a certificate index past the chain */
        ASSERT_ERR(p11_obj_resolve(o, SLOT, p11_handle_make(SLOT + 1, EC_ID, P11_OBJ_PUBLIC, 0), true, &r),
                   -ENOENT);
        ASSERT_ERR(p11_obj_resolve(o, SLOT, p11_handle_make(SLOT, 5, P11_OBJ_PUBLIC, 0), true, &r), -ENOENT);
        ASSERT_ERR(p11_obj_resolve(o, SLOT, p11_handle_make(SLOT, RSA_ID, P11_OBJ_CERT, 1), true, &r),
                   -ENOENT);
        ASSERT_ERR(p11_obj_resolve(o, SLOT, 0, true, &r), -ENOENT);
        ASSERT_ERR(p11_obj_resolve(NULL, SLOT, p11_handle_make(SLOT, EC_ID, P11_OBJ_PUBLIC, 0), true, &r),
                   -ENOENT);
        r = obj(o, EC_ID, P11_OBJ_CERT, 0);
        ASSERT_EQ(p11_obj_size(&r), sizeof(ec_leaf_cert));
        p11_objects_free(o);
}

/* ---- hostile input ---- */

static void test_bad_tokens(void) {
        struct rpc_token_info *ti = fixture_info();
        struct p11_objects *o = NULL;
        static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };

        ti->keys[1].id = EC_ID; /* duplicate key ids would give colliding handles */
        ASSERT_ERR(p11_objects_build(ti, &o), -EBADMSG);
        ti = fixture_info();
        ti->keys[0].certs[1] = (struct rpc_slice){ junk, sizeof(junk) };
        ASSERT_ERR(p11_objects_build(ti, &o), -EBADMSG);
        ti = fixture_info();
        ti->keys[0].certs[0].len--; /* truncated */
        ASSERT_ERR(p11_objects_build(ti, &o), -EBADMSG);
        ti = fixture_info();
        ti->keys[2].type = RPC_KEY_EC; /* declared type disagrees with the SPKI */
        ASSERT_ERR(p11_objects_build(ti, &o), -EBADMSG);
        ti = fixture_info();
        ti->keys[0].id = RPC_KEY_ID_MAX + 1;
        ASSERT_ERR(p11_objects_build(ti, &o), -EBADMSG);
        ti = fixture_info();
        ti->keys[0].n_certs = 0; /* no certificate is fine: a key without objects beyond itself */
        ASSERT_OK(p11_objects_build(ti, &o));
        ASSERT_EQ(p11_objects_find_key(o, EC_ID)->n_certs, 0);
        o = p11_objects_free(o);
        ti->n_keys = 0;
        ASSERT_OK(p11_objects_build(ti, &o));
        ASSERT_EQ(o->n_keys, 0);
        p11_objects_free(o);
        ASSERT_TRUE(ERR_peek_error() == 0); /* the error queue is left as found */
}

/* Every single-bit flip, 0x00/0xff byte and truncation of the SPKI (our parsing), and one of those
 * per certificate byte in turn (OpenSSL's parsing, and slow under valgrind): a clean failure or a
 * success, never a crash or a leak (valgrind setup). */
static void mutate(uint8_t *buf, size_t len, size_t which, int op) {
        if (op < 8)
                buf[which] ^= (uint8_t) (1u << op);
        else
                buf[which] = op == 8 ? 0x00 : 0xff;
}

static void test_mutations(void) {
        static uint8_t spki[sizeof(p256_spki)], cert[sizeof(ec_leaf_cert)];
        size_t ok = 0, failed = 0;

        for (size_t i = 0; i < sizeof(spki) + sizeof(cert); i++)
                for (int op = 0; op < 11; op++) {
                        struct rpc_token_info *ti;
                        struct p11_objects *o = NULL;
                        bool in_spki = i < sizeof(spki);
                        size_t at = in_spki ? i : i - sizeof(spki);
                        uint8_t *buf = in_spki ? spki : cert;
                        size_t len = in_spki ? sizeof(spki) : sizeof(cert);

                        if (!in_spki && op != (int) (at % 11))
                                continue;
                        ti = fixture_info();
                        memcpy(spki, p256_spki, sizeof(spki));
                        memcpy(cert, ec_leaf_cert, sizeof(cert));
                        if (op < 10)
                                mutate(buf, len, at, op);
                        else
                                len = at; /* truncation */
                        ti->n_keys = 1;   /* only the mutated key and its leaf: keeps valgrind runs short */
                        ti->keys[0].n_certs = 1;
                        ti->keys[0].spki = (struct rpc_slice){ spki, in_spki ? len : sizeof(spki) };
                        ti->keys[0].certs[0] = (struct rpc_slice){ cert, in_spki ? sizeof(cert) : len };
                        if (p11_objects_build(ti, &o) == 0)
                                ok++;
                        else
                                failed++;
                        p11_objects_free(o);
                }
        ASSERT_TRUE(failed > 0);
        ASSERT_TRUE(ok > 0); /* flips inside the signature or the point still parse */
        ASSERT_TRUE(ERR_peek_error() == 0);
}

TAP_MAIN(TEST("/p11/objects/handles", test_handles), TEST("/p11/objects/key-id-bytes", test_key_id_bytes),
         TEST("/p11/objects/octet-string", test_octet_string), TEST("/p11/objects/build", test_build),
         TEST("/p11/objects/private-key", test_private_key), TEST("/p11/objects/rsa", test_rsa),
         TEST("/p11/objects/ed25519", test_ed25519), TEST("/p11/objects/certificates", test_certificates),
         TEST("/p11/objects/attr/buffer-rules", test_buffer_rules),
         TEST("/p11/objects/attr/template-mixed", test_template_mixed),
         TEST("/p11/objects/attr/allowed-mechanisms", test_allowed_mechanisms),
         TEST("/p11/objects/find", test_find), TEST("/p11/objects/resolve", test_resolve),
         TEST("/p11/objects/bad-tokens", test_bad_tokens), TEST("/p11/objects/mutations", test_mutations))
