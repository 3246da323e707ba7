/* The module's only exported symbols (see p11module.map): everything else is reached through them. */
#include "p11module/interface.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
        return p11_get_function_list(ppFunctionList);
}

EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
        return p11_get_interface_list(pInterfacesList, pulCount);
}

EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                            CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags) {
        return p11_get_interface(pInterfaceName, pVersion, ppInterface, flags);
}
