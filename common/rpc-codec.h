/* The wire codec in one include: the CBOR writer and reader, the schema engine and the messages. */
#pragma once

#include "common/cbor-read.h"
#include "common/cbor-write.h"
#include "common/rpc-messages.h"
#include "common/rpc-schema.h"
