/* The 2.40 function list and the 3.0 interfaces behind the three exported entry points. */
#pragma once

#include "p11module/pkcs11-3.h"

CK_RV p11_get_function_list(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);
CK_RV p11_get_interface_list(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
CK_RV p11_get_interface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                        CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);

/* C_GetInfo as the 3.0 interface reports it (cryptokiVersion 3.0). */
CK_RV p11_get_info_v3(CK_INFO_PTR pInfo);
