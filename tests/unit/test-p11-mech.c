/* p11module pure helpers and entry-point argument checks: mechanism table, parameters, DigestInfo,
 * signature sizes, C_Initialize/C_Finalize rules, interfaces, all without a daemon
 * (fork behaviour: tests/integration/test-p11-fork.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "p11module/interface.h"
#include "p11module/keys.h"
#include "p11module/mech.h"
#include "tests/lib/p11-spki.h"
#include "tests/lib/tap.h"

static const uint8_t p384_spki[] = {
        0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
        0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04, 0xcf, 0x12, 0x24, 0xa9, 0x9a, 0x46,
        0x4e, 0x3d, 0x38, 0x31, 0x42, 0x08, 0x21, 0x99, 0xf5, 0x35, 0x93, 0xd4, 0xac, 0x5d, 0xeb,
        0x47, 0x32, 0x5e, 0x75, 0x31, 0x9c, 0x20, 0x9b, 0xf9, 0xd9, 0xc8, 0x8d, 0xcc, 0xcd, 0xe5,
        0xe5, 0x49, 0x04, 0x88, 0xc9, 0xb9, 0x1a, 0xf9, 0xc8, 0x4e, 0xb9, 0x9d, 0x76, 0xfc, 0x59,
        0x9f, 0xa2, 0x18, 0x4f, 0x82, 0x73, 0x02, 0xb0, 0xe2, 0x19, 0x5e, 0x1c, 0x0e, 0x69, 0x58,
        0x33, 0x45, 0x39, 0xfb, 0x74, 0x7b, 0xd0, 0xe1, 0x20, 0xff, 0xa9, 0x2c, 0x0c, 0x5d, 0x88,
        0xd2, 0x69, 0x9b, 0x4e, 0x48, 0xb4, 0x9b, 0x94, 0x17, 0x89, 0x83, 0x50, 0x6b, 0xcc, 0x74,
};

static const uint8_t p521_spki[] = {
        0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
        0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00, 0x04, 0x01, 0xe7, 0xfb, 0x53, 0x82, 0xf6,
        0xb1, 0x92, 0x2a, 0x35, 0x72, 0xcf, 0x9b, 0x47, 0xd7, 0x21, 0xfc, 0xab, 0x9e, 0xf8, 0xbb, 0xe8,
        0x92, 0xfa, 0x12, 0x88, 0xdc, 0x7f, 0x5c, 0x58, 0x76, 0xb4, 0x0e, 0x7b, 0x9f, 0xde, 0xd7, 0xe3,
        0x3f, 0x02, 0xfd, 0xec, 0x1c, 0x04, 0xa4, 0xff, 0x9f, 0xfb, 0x54, 0x07, 0xc1, 0xba, 0xe3, 0xd1,
        0x38, 0x62, 0x9c, 0x05, 0x01, 0x8b, 0xc6, 0x7b, 0x66, 0xa7, 0x14, 0x90, 0x00, 0x7c, 0x6c, 0x1c,
        0x11, 0x87, 0x23, 0x90, 0x6d, 0xa1, 0x90, 0x23, 0x22, 0xbe, 0xec, 0xe6, 0xf4, 0xd4, 0x7d, 0xd4,
        0x75, 0xe4, 0x2f, 0x08, 0x44, 0x77, 0xd1, 0xd4, 0x59, 0xe1, 0x22, 0xc2, 0x62, 0x38, 0x7c, 0x20,
        0xd8, 0xe0, 0x29, 0xcd, 0xd8, 0xd8, 0x50, 0xb1, 0x0c, 0x02, 0xfd, 0xaa, 0x0a, 0xb9, 0x50, 0x6e,
        0x57, 0x2f, 0x2a, 0x6b, 0xb7, 0x1b, 0xd9, 0x43, 0xb3, 0xdd, 0x8f, 0x92, 0x7f, 0x93,
};

static const uint8_t secp256k1_spki[] = {
        0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
        0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00, 0x04, 0xbe, 0x91, 0xfe, 0xcb, 0x8e, 0xfc,
        0x02, 0xf6, 0x0e, 0x2f, 0xac, 0xf5, 0x4d, 0x17, 0xfe, 0xd1, 0xe8, 0x41, 0x09, 0x41, 0x2b,
        0x4d, 0x9b, 0xdf, 0x86, 0x5b, 0xca, 0xad, 0x58, 0xda, 0xbe, 0x5b, 0xb5, 0xef, 0x30, 0x47,
        0xa2, 0xc6, 0xdb, 0xbe, 0x9c, 0x46, 0x75, 0x44, 0x14, 0x3e, 0x6f, 0x06, 0x16, 0x0f, 0xe5,
        0x9a, 0x4a, 0x2d, 0xe4, 0x3b, 0x48, 0x23, 0xcf, 0xb9, 0x96, 0x1c, 0xa5, 0x70,
};

static const uint8_t rsa4096_spki[] = {
        0x30, 0x82, 0x02, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        0x05, 0x00, 0x03, 0x82, 0x02, 0x0f, 0x00, 0x30, 0x82, 0x02, 0x0a, 0x02, 0x82, 0x02, 0x01, 0x00, 0xab,
        0x19, 0x3c, 0xa8, 0xf8, 0xf6, 0xee, 0xec, 0xb7, 0x88, 0x1a, 0xec, 0x5d, 0xd1, 0xe5, 0x40, 0x6a, 0x58,
        0x73, 0x09, 0x97, 0xaf, 0xf5, 0x33, 0xb2, 0x93, 0xc2, 0x92, 0x92, 0x4e, 0xfc, 0x35, 0x35, 0x65, 0xd8,
        0xd1, 0x5b, 0xab, 0x76, 0x2a, 0xc7, 0x45, 0x73, 0x95, 0x57, 0x4c, 0x16, 0xa1, 0xbc, 0x24, 0x10, 0x8e,
        0xe3, 0x66, 0x91, 0x8d, 0xbe, 0x52, 0xd4, 0x36, 0xc7, 0x7a, 0x5f, 0x81, 0x19, 0x4c, 0x61, 0x70, 0xd1,
        0xe2, 0x06, 0x45, 0x9c, 0x8b, 0x78, 0x1d, 0xcb, 0x0d, 0x4d, 0x84, 0x36, 0x90, 0x00, 0x48, 0x05, 0x8f,
        0x07, 0x22, 0x51, 0x82, 0xbd, 0x54, 0xfb, 0x5d, 0x23, 0xbe, 0x97, 0xfa, 0x92, 0x6f, 0x6a, 0xf5, 0xe3,
        0x74, 0xd7, 0x66, 0x3a, 0x41, 0x60, 0xe9, 0x01, 0xad, 0x19, 0x27, 0x1f, 0xcb, 0xfe, 0xe7, 0xcd, 0x42,
        0xce, 0x85, 0xc9, 0x7f, 0x1b, 0x94, 0x5f, 0x06, 0xf9, 0x4e, 0x80, 0xf0, 0x9f, 0xcf, 0x92, 0x80, 0x44,
        0x0f, 0x41, 0xba, 0x2c, 0x1b, 0x1c, 0x94, 0xf0, 0x5d, 0xc4, 0x17, 0x41, 0xcc, 0xf3, 0xd2, 0xa1, 0x0e,
        0xf5, 0xcb, 0x29, 0xf3, 0xd0, 0xba, 0x2c, 0xea, 0xd4, 0x75, 0x0f, 0x25, 0x8e, 0x13, 0x47, 0x2b, 0x5e,
        0x77, 0x38, 0x7f, 0x99, 0x5b, 0x8a, 0x69, 0x4d, 0xa9, 0x3e, 0x1d, 0xe7, 0xe3, 0x3a, 0x92, 0x56, 0x6b,
        0x17, 0x4a, 0x9c, 0xbf, 0xf8, 0x77, 0x6e, 0xfe, 0xbf, 0x32, 0xba, 0x73, 0x93, 0x78, 0x6b, 0xdd, 0x38,
        0xec, 0x2e, 0x1b, 0x7f, 0xe0, 0xf0, 0x09, 0x77, 0x95, 0xaf, 0x69, 0x19, 0x89, 0x26, 0x23, 0x03, 0x58,
        0x82, 0xa3, 0xce, 0x67, 0xe9, 0x74, 0xb0, 0x3b, 0xd9, 0x0a, 0xaa, 0xaa, 0x1d, 0x16, 0xdb, 0x09, 0x34,
        0x34, 0xab, 0x79, 0xaa, 0x36, 0xf0, 0x87, 0xe6, 0x7c, 0x94, 0x87, 0x8b, 0x5d, 0x2a, 0x13, 0xbb, 0x8b,
        0x5b, 0xbf, 0x05, 0xbd, 0x03, 0x4e, 0x68, 0xe3, 0xef, 0x98, 0xd9, 0xce, 0x98, 0xff, 0xb3, 0xf2, 0x46,
        0x50, 0x46, 0x00, 0x71, 0xef, 0x4e, 0xcc, 0x21, 0x73, 0x3f, 0x08, 0x96, 0xa9, 0x45, 0xf4, 0x26, 0x2f,
        0x53, 0xb1, 0x74, 0x4d, 0xb8, 0xff, 0x42, 0x4e, 0x03, 0x3e, 0xb1, 0xa5, 0x9c, 0xd6, 0x2a, 0x55, 0xf9,
        0x45, 0x46, 0x49, 0xf6, 0xd1, 0x4b, 0x15, 0x2a, 0xb4, 0x3c, 0xdd, 0x71, 0xb6, 0xaa, 0x91, 0x34, 0x21,
        0x78, 0xc6, 0x9a, 0xfc, 0x7e, 0x87, 0xe8, 0x57, 0x7d, 0xaa, 0xa8, 0x22, 0x38, 0xac, 0x0f, 0x8c, 0x24,
        0xa9, 0x19, 0x8d, 0x3c, 0xed, 0x41, 0xb5, 0xad, 0x67, 0xd3, 0xc2, 0x45, 0x8e, 0x82, 0x04, 0x22, 0x83,
        0x80, 0x78, 0x62, 0x5f, 0x3b, 0x54, 0x46, 0x86, 0x12, 0x1e, 0x5e, 0x62, 0xd3, 0xbe, 0x48, 0xf3, 0xdf,
        0x8f, 0x67, 0xca, 0x47, 0x60, 0x63, 0x56, 0x1a, 0x3c, 0xfc, 0x67, 0x28, 0xae, 0x03, 0x0f, 0xde, 0x82,
        0x72, 0x12, 0x41, 0xb8, 0x6a, 0x0a, 0xde, 0x28, 0x4d, 0xb4, 0x6a, 0xa2, 0x26, 0xf5, 0x7b, 0x17, 0x53,
        0x1c, 0x4d, 0xfe, 0x4e, 0x18, 0x53, 0xea, 0xd0, 0xe1, 0x30, 0x7b, 0x27, 0x81, 0xb7, 0xa9, 0x63, 0x69,
        0xf5, 0x2c, 0xe3, 0x60, 0x69, 0x72, 0xed, 0xef, 0xe0, 0x2a, 0x9e, 0x39, 0x71, 0x57, 0x44, 0x7b, 0xe2,
        0x34, 0xc7, 0x56, 0xf3, 0xe1, 0x7c, 0xea, 0x68, 0x98, 0x45, 0x95, 0x6e, 0x56, 0x4f, 0x3a, 0xac, 0x0d,
        0xe9, 0xe8, 0x72, 0xb0, 0x45, 0x5b, 0x49, 0x8b, 0x4f, 0xd2, 0x25, 0x22, 0x32, 0x36, 0x59, 0x89, 0xdb,
        0xd6, 0xbc, 0x77, 0xec, 0xc7, 0xec, 0x37, 0x03, 0xe8, 0x4a, 0xb4, 0xb7, 0xea, 0xf1, 0x95, 0x3e, 0x96,
        0xf8, 0xcf, 0x5f, 0xe1, 0xa4, 0x80, 0x58, 0x17, 0x34, 0x48, 0x01, 0xd9, 0xf8, 0x91, 0x18, 0x5a, 0x8c,
        0x1d, 0x02, 0x03, 0x01, 0x00, 0x01,
};

/* ---- mechanism table ---- */

static const CK_MECHANISM_TYPE expected_mechs[] = {
        CKM_RSA_PKCS,
        CKM_RSA_PKCS_PSS,
        CKM_RSA_PKCS_OAEP,
        CKM_SHA1_RSA_PKCS,
        CKM_SHA224_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA384_RSA_PKCS,
        CKM_SHA512_RSA_PKCS,
        CKM_SHA1_RSA_PKCS_PSS,
        CKM_SHA224_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_SHA384_RSA_PKCS_PSS,
        CKM_SHA512_RSA_PKCS_PSS,
        CKM_ECDSA,
        CKM_ECDSA_SHA1,
        CKM_ECDSA_SHA224,
        CKM_ECDSA_SHA256,
        CKM_ECDSA_SHA384,
        CKM_ECDSA_SHA512,
        CKM_EDDSA,
};

static void test_table(void) {
        ASSERT_EQ(p11_mech_count(), ELEMENTSOF(expected_mechs));
        for (size_t i = 0; i < ELEMENTSOF(expected_mechs); i++) {
                const struct p11_mech *m = p11_mech_find(expected_mechs[i]);

                ASSERT_TRUE(m);
                ASSERT_EQ(m->type, expected_mechs[i]);
                ASSERT_TRUE(m->flags & (CKF_SIGN | CKF_DECRYPT));
                /* hashed mechanisms hash here: the wire mechanism is never a hashing one */
                ASSERT_TRUE(m->wire > RPC_MECH_NONE && m->wire < _RPC_MECH_MAX);
        }
        ASSERT_TRUE(p11_mech_find(CKM_SHA256) == NULL);
        ASSERT_TRUE(p11_mech_find(CKM_RSA_X_509) == NULL);
        ASSERT_TRUE(p11_mech_find(CKM_ECDH1_DERIVE) == NULL);
        ASSERT_TRUE(p11_mech_at(p11_mech_count()) == NULL);
}

static void test_info(void) {
        CK_MECHANISM_INFO info;

        ASSERT_EQ(p11_mech_info(CKM_RSA_PKCS, &info), CKR_OK);
        ASSERT_EQ(info.ulMinKeySize, 2048);
        ASSERT_EQ(info.ulMaxKeySize, 4096);
        ASSERT_EQ(info.flags, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_DECRYPT);
        ASSERT_EQ(p11_mech_info(CKM_RSA_PKCS_OAEP, &info), CKR_OK);
        ASSERT_EQ(info.flags, CKF_HW | CKF_DECRYPT);
        ASSERT_EQ(p11_mech_info(CKM_SHA384_RSA_PKCS_PSS, &info), CKR_OK);
        ASSERT_EQ(info.flags, CKF_HW | CKF_SIGN | CKF_VERIFY);
        ASSERT_EQ(p11_mech_info(CKM_ECDSA_SHA256, &info), CKR_OK);
        ASSERT_EQ(info.ulMinKeySize, 256);
        ASSERT_EQ(info.ulMaxKeySize, 521);
        ASSERT_EQ(info.flags,
                  CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS);
        ASSERT_EQ(p11_mech_info(CKM_EDDSA, &info), CKR_OK);
        ASSERT_EQ(info.ulMinKeySize, 255);
        ASSERT_EQ(info.flags, CKF_HW | CKF_SIGN | CKF_VERIFY);
        /* digests: local, software, no key */
        ASSERT_EQ(p11_mech_info(CKM_SHA256, &info), CKR_OK);
        ASSERT_EQ(info.flags, CKF_DIGEST);
        ASSERT_EQ(info.ulMinKeySize, 0);
        ASSERT_EQ(info.ulMaxKeySize, 0);
        ASSERT_EQ(p11_mech_info(CKM_SHA_1, &info), CKR_OK);
        ASSERT_EQ(p11_mech_info(CKM_SHA512, &info), CKR_OK);
        ASSERT_EQ(p11_mech_info(CKM_MD5, &info), CKR_MECHANISM_INVALID);
        ASSERT_EQ(p11_mech_info(0x2b0 /* CKM_SHA3_256 */, &info), CKR_MECHANISM_INVALID);
        ASSERT_EQ(p11_mech_info(0xdeadbeef, &info), CKR_MECHANISM_INVALID);
}

static void test_for_key(void) {
        CK_MECHANISM_TYPE v[32];

        ASSERT_EQ(p11_mech_for_key(RPC_KEY_RSA, CKF_SIGN, v, ELEMENTSOF(v)), 12);
        ASSERT_EQ(p11_mech_for_key(RPC_KEY_RSA, CKF_DECRYPT, v, ELEMENTSOF(v)), 2);
        ASSERT_EQ(v[0], CKM_RSA_PKCS);
        ASSERT_EQ(v[1], CKM_RSA_PKCS_OAEP);
        ASSERT_EQ(p11_mech_for_key(RPC_KEY_EC, CKF_SIGN | CKF_DECRYPT, v, ELEMENTSOF(v)), 6);
        ASSERT_EQ(p11_mech_for_key(RPC_KEY_EC, CKF_DECRYPT, v, ELEMENTSOF(v)), 0);
        ASSERT_EQ(p11_mech_for_key(RPC_KEY_ED25519, CKF_SIGN, v, ELEMENTSOF(v)), 1);
        ASSERT_EQ(v[0], CKM_EDDSA);
        ASSERT_EQ(p11_mech_for_key(RPC_KEY_RSA, CKF_SIGN, v, 3), 3); /* bounded by max */
}

static void test_wire(void) {
        ASSERT_EQ(p11_mech_wire(p11_mech_find(CKM_RSA_PKCS), CKF_SIGN), RPC_MECH_RSA_PKCS);
        ASSERT_EQ(p11_mech_wire(p11_mech_find(CKM_RSA_PKCS), CKF_DECRYPT), RPC_MECH_RSA_PKCS_DEC);
        ASSERT_EQ(p11_mech_wire(p11_mech_find(CKM_RSA_PKCS_OAEP), CKF_DECRYPT), RPC_MECH_RSA_OAEP);
        ASSERT_EQ(p11_mech_wire(p11_mech_find(CKM_SHA512_RSA_PKCS), CKF_SIGN), RPC_MECH_RSA_PKCS);
        ASSERT_EQ(p11_mech_find(CKM_SHA512_RSA_PKCS)->hash, RPC_HASH_SHA512);
        ASSERT_EQ(p11_mech_wire(p11_mech_find(CKM_SHA224_RSA_PKCS_PSS), CKF_SIGN), RPC_MECH_RSA_PSS);
        ASSERT_EQ(p11_mech_wire(p11_mech_find(CKM_ECDSA_SHA384), CKF_SIGN), RPC_MECH_ECDSA);
        ASSERT_EQ(p11_mech_find(CKM_ECDSA_SHA384)->hash, RPC_HASH_SHA384);
        ASSERT_EQ(p11_mech_find(CKM_ECDSA)->hash, RPC_HASH_NONE);
        ASSERT_EQ(p11_mech_wire(p11_mech_find(CKM_EDDSA), CKF_SIGN), RPC_MECH_EDDSA);
}

static void test_hash_maps(void) {
        static const struct {
                CK_MECHANISM_TYPE ckm;
                CK_RSA_PKCS_MGF_TYPE mgf;
                enum rpc_hash h;
                size_t len;
        } rows[] = {
                { CKM_SHA_1, CKG_MGF1_SHA1, RPC_HASH_SHA1, 20 },
                { CKM_SHA224, CKG_MGF1_SHA224, RPC_HASH_SHA224, 28 },
                { CKM_SHA256, CKG_MGF1_SHA256, RPC_HASH_SHA256, 32 },
                { CKM_SHA384, CKG_MGF1_SHA384, RPC_HASH_SHA384, 48 },
                { CKM_SHA512, CKG_MGF1_SHA512, RPC_HASH_SHA512, 64 },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                ASSERT_EQ(p11_hash_from_ckm(rows[i].ckm), rows[i].h);
                ASSERT_EQ(p11_hash_from_mgf(rows[i].mgf), rows[i].h);
                ASSERT_EQ(p11_hash_len(rows[i].h), rows[i].len);
                ASSERT_EQ(EVP_MD_get_size(p11_hash_md(rows[i].h)), (int) rows[i].len);
        }
        ASSERT_EQ(p11_hash_from_ckm(CKM_MD5), RPC_HASH_NONE);
        ASSERT_EQ(p11_hash_from_ckm(CKM_SHA512_224), RPC_HASH_NONE);
        ASSERT_EQ(p11_hash_from_mgf(0), RPC_HASH_NONE);
        ASSERT_EQ(p11_hash_len(RPC_HASH_NONE), 0);
        ASSERT_TRUE(p11_hash_md(RPC_HASH_NONE) == NULL);
}

/* ---- DigestInfo ---- */

static void test_digestinfo(void) {
        for (int h = RPC_HASH_SHA1; h < _RPC_HASH_MAX; h++) {
                uint8_t digest[64], out[P11_DIGESTINFO_MAX];
                const unsigned char *p = out;
                const X509_ALGOR *alg;
                const ASN1_OCTET_STRING *os;
                const ASN1_OBJECT *oid;
                size_t len = p11_hash_len(h);
                X509_SIG *sig;
                int n;

                for (size_t i = 0; i < len; i++)
                        digest[i] = (uint8_t) (i * 7 + h);
                n = p11_digestinfo_build(h, digest, len, out, sizeof(out));
                ASSERT_TRUE(n > 0);
                /* It parses as a DigestInfo with the right algorithm and digest, and nothing else. */
                sig = d2i_X509_SIG(NULL, &p, n);
                ASSERT_TRUE(sig);
                ASSERT_TRUE(p == out + n);
                X509_SIG_get0(sig, &alg, &os);
                X509_ALGOR_get0(&oid, NULL, NULL, alg);
                ASSERT_EQ(OBJ_obj2nid(oid), EVP_MD_get_type(p11_hash_md(h)));
                ASSERT_EQ(ASN1_STRING_length(os), (int) len);
                ASSERT_MEMEQ(ASN1_STRING_get0_data(os), digest, len);
                X509_SIG_free(sig);
                ASSERT_ERR(p11_digestinfo_build(h, digest, len - 1, out, sizeof(out)), -EINVAL);
                ASSERT_ERR(p11_digestinfo_build(h, digest, len, out, (size_t) n - 1), -ENOBUFS);
        }
        ASSERT_ERR(p11_digestinfo_build(RPC_HASH_NONE, (const uint8_t *) "x", 1, (uint8_t[64]){}, 64),
                   -EINVAL);
}

static void test_digestinfo_known(void) {
        /* SHA-256 DigestInfo prefix from RFC 8017 §9.2 note 1 */
        static const uint8_t prefix[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                          0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
        uint8_t digest[32] = { 1, 2, 3 }, out[P11_DIGESTINFO_MAX];

        ASSERT_EQ(p11_digestinfo_build(RPC_HASH_SHA256, digest, 32, out, sizeof(out)), 51);
        ASSERT_MEMEQ(out, prefix, sizeof(prefix));
        ASSERT_MEMEQ(out + sizeof(prefix), digest, 32);
}

/* ---- signature sizes from real keys ---- */

static int key_from_spki(const uint8_t *spki, size_t len, uint32_t type, struct p11_key *ret) {
        struct rpc_key_info ki = { .id = 1, .type = type, .spki = { spki, len } };

        return p11_key_build(&ki, ret);
}

static void test_sizes(void) {
        static const struct {
                const uint8_t *spki;
                size_t len;
                enum rpc_key_type type;
                uint32_t bits;
                size_t key_bytes, sig_len;
        } rows[] = {
                { p256_spki, sizeof(p256_spki), RPC_KEY_EC, 256, 32, 64 },
                { p384_spki, sizeof(p384_spki), RPC_KEY_EC, 384, 48, 96 },
                { p521_spki, sizeof(p521_spki), RPC_KEY_EC, 521, 66, 132 },
                { ed25519_spki, sizeof(ed25519_spki), RPC_KEY_ED25519, 255, 32, 64 },
                { rsa2048_spki, sizeof(rsa2048_spki), RPC_KEY_RSA, 2048, 256, 256 },
                { rsa4096_spki, sizeof(rsa4096_spki), RPC_KEY_RSA, 4096, 512, 512 },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                struct p11_key k;

                ASSERT_OK(key_from_spki(rows[i].spki, rows[i].len, rows[i].type, &k));
                ASSERT_EQ(k.type, rows[i].type);
                ASSERT_EQ(k.bits, rows[i].bits);
                ASSERT_EQ(k.key_bytes, rows[i].key_bytes);
                ASSERT_EQ(k.sig_len, rows[i].sig_len);
                p11_key_done(&k);
                /* Without a declared type the SPKI decides. */
                ASSERT_OK(key_from_spki(rows[i].spki, rows[i].len, RPC_KEY_NONE, &k));
                ASSERT_EQ(k.type, rows[i].type);
                p11_key_done(&k);
        }
}

static void test_unsupported_keys(void) {
        struct p11_key k;

        /* secp256k1 is not a curve the enclave signs with */
        ASSERT_ERR(key_from_spki(secp256k1_spki, sizeof(secp256k1_spki), RPC_KEY_EC, &k), -EBADMSG);
        /* declared type and SPKI disagree */
        ASSERT_ERR(key_from_spki(p256_spki, sizeof(p256_spki), RPC_KEY_RSA, &k), -EBADMSG);
        ASSERT_ERR(key_from_spki(rsa2048_spki, sizeof(rsa2048_spki), RPC_KEY_ED25519, &k), -EBADMSG);
        /* truncated, trailing garbage, empty */
        ASSERT_ERR(key_from_spki(p256_spki, sizeof(p256_spki) - 1, RPC_KEY_EC, &k), -EBADMSG);
        ASSERT_ERR(key_from_spki(p256_spki, 0, RPC_KEY_EC, &k), -EBADMSG);
        {
                uint8_t buf[sizeof(p256_spki) + 1];

                memcpy(buf, p256_spki, sizeof(p256_spki));
                buf[sizeof(p256_spki)] = 0;
                ASSERT_ERR(key_from_spki(buf, sizeof(buf), RPC_KEY_EC, &k), -EBADMSG);
        }
}

/* ---- parameters ---- */

static CK_RV pss_check(CK_MECHANISM_TYPE type, CK_MECHANISM_TYPE hash, CK_RSA_PKCS_MGF_TYPE mgf,
                       CK_ULONG salt, size_t key_bytes, struct p11_mech_params *p) {
        CK_RSA_PKCS_PSS_PARAMS pss = { hash, mgf, salt };
        CK_MECHANISM m = { type, &pss, sizeof(pss) };

        return p11_mech_params_check(p11_mech_find(type), &m, CKF_SIGN, key_bytes, p);
}

static void test_pss_params(void) {
        struct p11_mech_params p;
        CK_MECHANISM m = { CKM_RSA_PKCS_PSS, NULL, 0 };

        ASSERT_EQ(pss_check(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32, 256, &p), CKR_OK);
        ASSERT_EQ(p.hash, RPC_HASH_SHA256);
        ASSERT_EQ(p.mgf_hash, RPC_HASH_SHA256);
        ASSERT_EQ(p.salt_len, 32);
        /* the raw mechanism takes any hash; the MGF hash may differ */
        ASSERT_EQ(pss_check(CKM_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA1, 0, 256, &p), CKR_OK);
        ASSERT_EQ(p.hash, RPC_HASH_SHA384);
        ASSERT_EQ(p.mgf_hash, RPC_HASH_SHA1);
        /* a combined mechanism's hash must match its parameters */
        ASSERT_EQ(pss_check(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, 32, 256, &p),
                  CKR_MECHANISM_PARAM_INVALID);
        ASSERT_EQ(pss_check(CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1, 20, 256, &p), CKR_OK);
        /* unknown hash or MGF */
        ASSERT_EQ(pss_check(CKM_RSA_PKCS_PSS, CKM_MD5, CKG_MGF1_SHA256, 16, 256, &p),
                  CKR_MECHANISM_PARAM_INVALID);
        ASSERT_EQ(pss_check(CKM_RSA_PKCS_PSS, CKM_SHA256, 0x99, 32, 256, &p), CKR_MECHANISM_PARAM_INVALID);
        /* salt: emLen >= hLen + sLen + 2 */
        ASSERT_EQ(pss_check(CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 256 - 64 - 2, 256, &p),
                  CKR_OK);
        ASSERT_EQ(pss_check(CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 256 - 64 - 1, 256, &p),
                  CKR_MECHANISM_PARAM_INVALID);
        ASSERT_EQ(pss_check(CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, (CK_ULONG) -1, 256, &p),
                  CKR_MECHANISM_PARAM_INVALID);
        /* missing or mis-sized parameters */
        ASSERT_EQ(p11_mech_params_check(p11_mech_find(CKM_RSA_PKCS_PSS), &m, CKF_SIGN, 256, &p),
                  CKR_MECHANISM_PARAM_INVALID);
        {
                CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
                CK_MECHANISM bad = { CKM_RSA_PKCS_PSS, &pss, sizeof(pss) - 1 };

                ASSERT_EQ(p11_mech_params_check(p11_mech_find(CKM_RSA_PKCS_PSS), &bad, CKF_SIGN, 256, &p),
                          CKR_MECHANISM_PARAM_INVALID);
        }
        ASSERT_EQ(p11_mech_params_check(NULL, &m, CKF_SIGN, 256, &p), CKR_ARGUMENTS_BAD);
}

static void test_oaep_params(void) {
        CK_RSA_PKCS_OAEP_PARAMS o = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, (void *) "abc", 3 };
        CK_MECHANISM m = { CKM_RSA_PKCS_OAEP, &o, sizeof(o) };
        const struct p11_mech *oaep = p11_mech_find(CKM_RSA_PKCS_OAEP);
        static uint8_t big[RPC_OAEP_LABEL_MAX + 1];
        struct p11_mech_params p;

        ASSERT_EQ(p11_mech_params_check(oaep, &m, CKF_DECRYPT, 256, &p), CKR_OK);
        ASSERT_EQ(p.hash, RPC_HASH_SHA256);
        ASSERT_EQ(p.label_len, 3);
        ASSERT_MEMEQ(p.label, "abc", 3);
        o.source = 0; /* no label, no source: accepted (pkcs11-tool sends this) */
        o.pSourceData = NULL;
        o.ulSourceDataLen = 0;
        ASSERT_EQ(p11_mech_params_check(oaep, &m, CKF_DECRYPT, 256, &p), CKR_OK);
        ASSERT_EQ(p.label_len, 0);
        o.source = 2;
        ASSERT_EQ(p11_mech_params_check(oaep, &m, CKF_DECRYPT, 256, &p), CKR_MECHANISM_PARAM_INVALID);
        o.source = CKZ_DATA_SPECIFIED;
        o.pSourceData = big;
        o.ulSourceDataLen = sizeof(big);
        ASSERT_EQ(p11_mech_params_check(oaep, &m, CKF_DECRYPT, 256, &p), CKR_MECHANISM_PARAM_INVALID);
        o.pSourceData = NULL;
        o.ulSourceDataLen = 4;
        ASSERT_EQ(p11_mech_params_check(oaep, &m, CKF_DECRYPT, 256, &p), CKR_MECHANISM_PARAM_INVALID);
        o.ulSourceDataLen = 0;
        o.hashAlg = CKM_SHA512;
        o.mgf = CKG_MGF1_SHA512;
        ASSERT_EQ(p11_mech_params_check(oaep, &m, CKF_DECRYPT, 129, &p), CKR_MECHANISM_PARAM_INVALID);
        ASSERT_EQ(p11_mech_params_check(oaep, &m, CKF_DECRYPT, 130, &p), CKR_OK);
        /* OAEP is not a signature mechanism */
        ASSERT_EQ(p11_mech_params_check(oaep, &m, CKF_SIGN, 256, &p), CKR_MECHANISM_INVALID);
}

static void test_eddsa_params(void) {
        const struct p11_mech *ed = p11_mech_find(CKM_EDDSA);
        CK_EDDSA_PARAMS e = { CK_FALSE, 0, NULL };
        CK_MECHANISM m = { CKM_EDDSA, NULL, 0 };
        struct p11_mech_params p;

        ASSERT_EQ(p11_mech_params_check(ed, &m, CKF_SIGN, 32, &p), CKR_OK);
        m.pParameter = &e;
        m.ulParameterLen = sizeof(e);
        ASSERT_EQ(p11_mech_params_check(ed, &m, CKF_SIGN, 32, &p), CKR_OK);
        e.phFlag = CK_TRUE; /* Ed25519ph */
        ASSERT_EQ(p11_mech_params_check(ed, &m, CKF_SIGN, 32, &p), CKR_MECHANISM_PARAM_INVALID);
        e.phFlag = CK_FALSE;
        e.ulContextDataLen = 3; /* Ed25519ctx */
        e.pContextData = (CK_BYTE_PTR) "ctx";
        ASSERT_EQ(p11_mech_params_check(ed, &m, CKF_SIGN, 32, &p), CKR_MECHANISM_PARAM_INVALID);
        m.ulParameterLen = 1;
        ASSERT_EQ(p11_mech_params_check(ed, &m, CKF_SIGN, 32, &p), CKR_MECHANISM_PARAM_INVALID);
}

static void test_no_params(void) {
        CK_ULONG junk = 1;
        CK_MECHANISM m = { CKM_ECDSA, &junk, sizeof(junk) };
        struct p11_mech_params p;

        ASSERT_EQ(p11_mech_params_check(p11_mech_find(CKM_ECDSA), &m, CKF_SIGN, 32, &p),
                  CKR_MECHANISM_PARAM_INVALID);
        m.ulParameterLen = 0; /* a pointer with length 0 is "no parameters" */
        ASSERT_EQ(p11_mech_params_check(p11_mech_find(CKM_ECDSA), &m, CKF_SIGN, 32, &p), CKR_OK);
        ASSERT_EQ(p.hash, RPC_HASH_NONE);
        m.mechanism = CKM_SHA256_RSA_PKCS;
        ASSERT_EQ(p11_mech_params_check(p11_mech_find(CKM_SHA256_RSA_PKCS), &m, CKF_SIGN, 256, &p), CKR_OK);
        ASSERT_EQ(p.hash, RPC_HASH_SHA256);
}

static void test_input_len(void) {
        struct p11_mech_params pss = { .hash = RPC_HASH_SHA256 }, none = {};

        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_RSA_PKCS), &none, 256, 245), CKR_OK);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_RSA_PKCS), &none, 256, 246), CKR_DATA_LEN_RANGE);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_RSA_PKCS), &none, 256, 0), CKR_OK);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_RSA_PKCS_PSS), &pss, 256, 32), CKR_OK);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_RSA_PKCS_PSS), &pss, 256, 31), CKR_DATA_LEN_RANGE);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_ECDSA), &none, 32, 0), CKR_DATA_LEN_RANGE);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_ECDSA), &none, 32, 64), CKR_OK);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_EDDSA), &none, 32, 0), CKR_OK);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_EDDSA), &none, 32, RPC_DATA_MAX), CKR_OK);
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_EDDSA), &none, 32, RPC_DATA_MAX + 1),
                  CKR_DATA_LEN_RANGE);
        /* hashed mechanisms take any length */
        ASSERT_EQ(p11_mech_check_input(p11_mech_find(CKM_ECDSA_SHA256), &none, 32, 1 << 20), CKR_OK);
}

/* ---- entry points without a daemon ---- */

static void no_daemon(void) {
        (void) setenv("ENCLAVE_ACM_ADDRESS", "unix:path=/nonexistent/enclave-acm-test.sock", 1);
        (void) unsetenv("ENCLAVE_ACM_DEBUG");
}

static void test_before_init(void) {
        CK_INFO info;
        CK_ULONG n = 0;
        CK_SESSION_HANDLE h;

        no_daemon();
        ASSERT_EQ(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
        ASSERT_EQ(C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
        ASSERT_EQ(C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
        ASSERT_EQ(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_CRYPTOKI_NOT_INITIALIZED);
        ASSERT_EQ(C_GenerateRandom(1, (CK_BYTE[4]){}, 4), CKR_CRYPTOKI_NOT_INITIALIZED);
        ASSERT_EQ(C_Sign(1, NULL, 0, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void test_init_args(void) {
        CK_C_INITIALIZE_ARGS a = { .pReserved = (void *) 1 };

        no_daemon();
        ASSERT_EQ(C_Initialize(&a), CKR_ARGUMENTS_BAD);
        a = (CK_C_INITIALIZE_ARGS){ .CreateMutex = (CK_CREATEMUTEX) 1 };
        ASSERT_EQ(C_Initialize(&a), CKR_ARGUMENTS_BAD); /* some but not all callbacks */
        a = (CK_C_INITIALIZE_ARGS){
                (CK_CREATEMUTEX) 1, (CK_DESTROYMUTEX) 1, (CK_LOCKMUTEX) 1, (CK_UNLOCKMUTEX) 1, 0, NULL
        };
        ASSERT_EQ(C_Initialize(&a), CKR_CANT_LOCK); /* only the application's locks */
        a.flags = CKF_OS_LOCKING_OK;
        ASSERT_EQ(C_Initialize(&a), CKR_OK);
        ASSERT_EQ(C_Finalize(NULL), CKR_OK);
        a = (CK_C_INITIALIZE_ARGS){ .flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS };
        ASSERT_EQ(C_Initialize(&a), CKR_OK);
        ASSERT_EQ(C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
        ASSERT_EQ(C_Finalize((void *) 1), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(C_Finalize(NULL), CKR_OK);
        ASSERT_EQ(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void test_init_cycles(void) {
        no_daemon();
        for (int i = 0; i < 500; i++) {
                CK_ULONG n = 99;
                CK_SESSION_HANDLE h;

                ASSERT_EQ(C_Initialize(NULL), CKR_OK);
                ASSERT_EQ(C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
                ASSERT_EQ(n, 0);
                ASSERT_EQ(C_OpenSession(7, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
                ASSERT_EQ(C_Finalize(NULL), CKR_OK);
        }
}

static void test_info_versions(void) {
        CK_FUNCTION_LIST_PTR l2;
        CK_INTERFACE_PTR i3;
        CK_INFO info;

        no_daemon();
        ASSERT_EQ(C_Initialize(NULL), CKR_OK);
        ASSERT_EQ(p11_get_function_list(&l2), CKR_OK);
        ASSERT_EQ(l2->version.major, 2);
        ASSERT_EQ(l2->version.minor, 40);
        ASSERT_EQ(l2->C_GetInfo(&info), CKR_OK);
        ASSERT_EQ(info.cryptokiVersion.major, 2);
        ASSERT_EQ(info.cryptokiVersion.minor, 40);
        ASSERT_MEMEQ(info.manufacturerID, "enclave-acm ", 12);
        ASSERT_MEMEQ(info.libraryDescription, "enclave-acm PKCS#11 module ", 27);
        ASSERT_EQ(info.flags, 0);
        ASSERT_EQ(p11_get_interface(NULL, NULL, &i3, 0), CKR_OK);
        ASSERT_EQ(((CK_FUNCTION_LIST_3_0 *) i3->pFunctionList)->C_GetInfo(&info), CKR_OK);
        ASSERT_EQ(info.cryptokiVersion.major, 3);
        ASSERT_EQ(info.cryptokiVersion.minor, 0);
        ASSERT_EQ(info.libraryVersion.major, 0);
        ASSERT_EQ(C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(C_Finalize(NULL), CKR_OK);
}

static void test_interfaces(void) {
        CK_INTERFACE list[4];
        CK_INTERFACE_PTR i;
        CK_VERSION v240 = { 2, 40 }, v30 = { 3, 0 }, v31 = { 3, 1 };
        CK_ULONG n = 0;

        ASSERT_EQ(p11_get_interface_list(NULL, &n), CKR_OK);
        ASSERT_EQ(n, 2);
        n = 1;
        ASSERT_EQ(p11_get_interface_list(list, &n), CKR_BUFFER_TOO_SMALL);
        ASSERT_EQ(n, 2);
        n = ELEMENTSOF(list);
        ASSERT_EQ(p11_get_interface_list(list, &n), CKR_OK);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ((const char *) list[0].pInterfaceName, "PKCS 11");
        ASSERT_EQ(((CK_VERSION *) list[0].pFunctionList)->major, 3);
        ASSERT_EQ(((CK_VERSION *) list[1].pFunctionList)->minor, 40);
        ASSERT_EQ(p11_get_interface_list(list, NULL), CKR_ARGUMENTS_BAD);

        ASSERT_EQ(p11_get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &i, 0), CKR_OK);
        ASSERT_EQ(((CK_VERSION *) i->pFunctionList)->minor, 40);
        ASSERT_EQ(p11_get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &i, 0), CKR_OK);
        ASSERT_EQ(((CK_FUNCTION_LIST_3_0 *) i->pFunctionList)->C_LoginUser, C_LoginUser);
        ASSERT_EQ(((CK_FUNCTION_LIST_3_0 *) i->pFunctionList)->C_Sign, C_Sign);
        ASSERT_EQ(p11_get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v31, &i, 0), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(p11_get_interface((CK_UTF8CHAR_PTR) "Vendor", NULL, &i, 0), CKR_ARGUMENTS_BAD);
        /* We reset in a forked child rather than keep state: no fork-safe interface. */
        ASSERT_EQ(p11_get_interface(NULL, NULL, &i, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(p11_get_interface(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
}

static void test_local_answers(void) {
        CK_SESSION_HANDLE h, h2;
        CK_SESSION_INFO si;
        CK_MECHANISM_INFO mi;
        CK_ULONG n;
        uint8_t r1[32] = {}, r2[32] = {};

        no_daemon();
        ASSERT_EQ(C_Initialize(NULL), CKR_OK);
        /* Daemon unreachable: the session still opens (libp11 0.4.12 hangs otherwise). */
        ASSERT_EQ(C_OpenSession(5, 0, NULL, NULL, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        ASSERT_EQ(C_OpenSession(5, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(C_OpenSession(5, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
        ASSERT_EQ(C_OpenSession(5, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h2), CKR_OK);
        ASSERT_NE(h, h2);
        ASSERT_EQ(C_GetSessionInfo(h, &si), CKR_OK);
        ASSERT_EQ(si.slotID, 5);
        ASSERT_EQ(si.state, CKS_RO_PUBLIC_SESSION);
        ASSERT_EQ(C_GetSessionInfo(h2, &si), CKR_OK);
        ASSERT_EQ(si.state, CKS_RW_PUBLIC_SESSION);
        ASSERT_EQ(si.flags, CKF_SERIAL_SESSION | CKF_RW_SESSION);
        ASSERT_EQ(C_GetSessionInfo(h, NULL), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(C_GetSessionInfo(h + 1000, &si), CKR_SESSION_HANDLE_INVALID);
        /* remote-dependent calls fail cleanly, never hang */
        ASSERT_EQ(C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_DEVICE_REMOVED);
        ASSERT_EQ(C_Login(h, 77, (CK_UTF8CHAR_PTR) "1234", 4), CKR_USER_TYPE_INVALID);
        ASSERT_EQ(C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR) "1234", 4), CKR_SESSION_READ_ONLY_EXISTS);
        ASSERT_EQ(C_Logout(h), CKR_USER_NOT_LOGGED_IN);
        ASSERT_EQ(C_FindObjectsInit(h, NULL, 0), CKR_DEVICE_REMOVED);
        ASSERT_EQ(C_FindObjects(h, NULL, 0, &n), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_Sign(h, NULL, 0, NULL, &n), CKR_OPERATION_NOT_INITIALIZED);
        ASSERT_EQ(C_SignInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(C_SignInit(h, &(CK_MECHANISM){ CKM_SHA256, NULL, 0 }, 1), CKR_MECHANISM_INVALID);
        ASSERT_EQ(C_DecryptInit(h, &(CK_MECHANISM){ CKM_ECDSA, NULL, 0 }, 1), CKR_MECHANISM_INVALID);
        ASSERT_EQ(C_GetMechanismInfo(5, CKM_RSA_PKCS, &mi), CKR_DEVICE_REMOVED);
        /* local answers */
        ASSERT_EQ(C_GenerateRandom(h, r1, sizeof(r1)), CKR_OK);
        ASSERT_EQ(C_GenerateRandom(h, r2, sizeof(r2)), CKR_OK);
        ASSERT_TRUE(memcmp(r1, r2, sizeof(r1)) != 0);
        ASSERT_EQ(C_GenerateRandom(h, NULL, 4), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(C_SeedRandom(h, r1, 4), CKR_RANDOM_SEED_NOT_SUPPORTED);
        ASSERT_EQ(C_GetFunctionStatus(h), CKR_FUNCTION_NOT_PARALLEL);
        ASSERT_EQ(C_CancelFunction(h), CKR_FUNCTION_NOT_PARALLEL);
        ASSERT_EQ(C_GetOperationState(h, NULL, &n), CKR_FUNCTION_NOT_SUPPORTED);
        ASSERT_EQ(C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);
        ASSERT_EQ(C_InitToken(5, NULL, 0, NULL), CKR_FUNCTION_NOT_SUPPORTED);
        ASSERT_EQ(C_CreateObject(h, NULL, 0, NULL), CKR_FUNCTION_NOT_SUPPORTED);
        ASSERT_EQ(C_GetSlotList(CK_FALSE, NULL, NULL), CKR_ARGUMENTS_BAD);
        ASSERT_EQ(C_CloseSession(h), CKR_OK);
        ASSERT_EQ(C_CloseSession(h), CKR_SESSION_HANDLE_INVALID);
        ASSERT_EQ(C_CloseAllSessions(5), CKR_OK);
        ASSERT_EQ(C_GetSessionInfo(h2, &si), CKR_SESSION_HANDLE_INVALID);
        ASSERT_EQ(C_CloseAllSessions(5), CKR_SLOT_ID_INVALID);
        ASSERT_EQ(C_Finalize(NULL), CKR_OK);
}

TAP_MAIN(TEST("/p11/mech/table", test_table), TEST("/p11/mech/info", test_info),
         TEST("/p11/mech/for-key", test_for_key), TEST("/p11/mech/wire", test_wire),
         TEST("/p11/mech/hash-maps", test_hash_maps), TEST("/p11/mech/digestinfo", test_digestinfo),
         TEST("/p11/mech/digestinfo/known", test_digestinfo_known), TEST("/p11/mech/sizes", test_sizes),
         TEST("/p11/mech/sizes/unsupported", test_unsupported_keys),
         TEST("/p11/mech/params/pss", test_pss_params), TEST("/p11/mech/params/oaep", test_oaep_params),
         TEST("/p11/mech/params/eddsa", test_eddsa_params), TEST("/p11/mech/params/none", test_no_params),
         TEST("/p11/mech/input-len", test_input_len), TEST("/p11/module/before-init", test_before_init),
         TEST("/p11/module/init-args", test_init_args), TEST("/p11/module/init-cycles", test_init_cycles),
         TEST("/p11/module/info-versions", test_info_versions),
         TEST("/p11/module/interfaces", test_interfaces),
         TEST("/p11/module/local-answers", test_local_answers))
