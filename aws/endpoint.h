/* AWS partitions, DNS suffixes and service host names from a region. Pure. */
#pragma once

#include <errno.h>
#include <stddef.h>

#include "aws/err.h"
#include "common/cleanup.h"

#define AWS_REGION_MAX     32u /* "ap-southeast-5", "us-gov-west-1", "eusc-de-east-1" fit easily */
#define AWS_DNS_SUFFIX_MAX 128u
#define AWS_HOST_MAX       256u

enum aws_partition {
        AWS_PARTITION_AWS,   /* amazonaws.com, also every region prefix we do not know */
        AWS_PARTITION_CN,    /* cn-*: amazonaws.com.cn */
        AWS_PARTITION_EUSC,  /* eusc-*: amazonaws.eu */
        AWS_PARTITION_ISO,   /* us-iso-*: c2s.ic.gov */
        AWS_PARTITION_ISO_B, /* us-isob-*: sc2s.sgov.gov */
        _AWS_PARTITION_MAX,
        _AWS_PARTITION_INVALID = -EINVAL,
};

/* "aws", "aws-cn", "aws-eusc", "aws-iso", "aws-iso-b"; NULL for an invalid value. */
const char *aws_partition_to_string(enum aws_partition p);
const char *aws_partition_dns_suffix(enum aws_partition p);

/* Strict: [a-z0-9-], 1..AWS_REGION_MAX bytes, starts with a letter, no leading, trailing or doubled '-',
 * at least one '-'. -EINVAL (e says which byte) otherwise. */
_must_check_ int aws_region_validate(const char *region, struct aws_err *e);
/* The partition of a valid region; unknown prefixes are the standard partition. */
_must_check_ int aws_region_partition(const char *region, enum aws_partition *ret, struct aws_err *e);
/* A DNS suffix given from outside (IMDS /latest/meta-data/services/domain): lower-case labels of
 * [a-z0-9-] (1..63 bytes, no '-' at either end), at least two, at most AWS_DNS_SUFFIX_MAX bytes. */
_must_check_ int aws_dns_suffix_validate(const char *suffix, struct aws_err *e);

/* "<service>.<region>.<suffix>" into buf; the suffix is suffix_override when not NULL, else the
 * partition's. Returns the length, -EINVAL for a bad part, -ENOBUFS if buf is too small. */
_must_check_ int aws_service_host(const char *service, const char *region, const char *suffix_override,
                                  char *buf, size_t size, struct aws_err *e);
/* kms.<region>.<suffix> */
_must_check_ int aws_kms_host(const char *region, const char *suffix_override, char *buf, size_t size,
                              struct aws_err *e);
