package inference

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// Indexes of the function pointers in ONNX Runtime's OrtApi table (C API 24,
// measured with offsetof against the header onnxruntime_go v1.27.0 ships).
// The table only ever grows at its end, so these hold for every release that
// serves API 24.
enum { apiReleaseStatus = 93, apiGetAvailableProviders = 125, apiReleaseAvailableProviders = 126 };

typedef struct {
	const void *const *(*GetApi)(unsigned int version);
	const char *(*GetVersionString)(void);
} apiBase;

typedef void *(*getProvidersFn)(char ***out, int *n);
typedef void *(*releaseProvidersFn)(char **p, int n);
typedef void (*releaseStatusFn)(void *status);

// probe_open loads a shared library the way the runtime would and unloads it
// again, returning NULL or the loader's reason (to be freed).
static char *probe_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		return strdup(e ? e : "unknown dlopen error");
	}
	dlclose(h);
	return NULL;
}

// available_providers fills names with up to max provider names (each to be
// freed) and returns how many, or -1 with *err set.
static int available_providers(const char *lib, unsigned int version, char **names, int max, char **err) {
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		*err = strdup(dlerror());
		return -1;
	}
	int count = -1;
	apiBase *(*getBase)(void) = (apiBase *(*)(void))dlsym(h, "OrtGetApiBase");
	const void *const *api = getBase ? getBase()->GetApi(version) : NULL;
	if (api == NULL) {
		*err = strdup("the library does not serve the C API version asked for");
		dlclose(h);
		return -1;
	}
	char **list = NULL;
	int n = 0;
	void *status = ((getProvidersFn)api[apiGetAvailableProviders])(&list, &n);
	if (status != NULL) {
		((releaseStatusFn)api[apiReleaseStatus])(status);
		*err = strdup("GetAvailableProviders failed");
	} else {
		count = 0;
		for (int i = 0; i < n && i < max; i++) names[count++] = strdup(list[i]);
		((releaseProvidersFn)api[apiReleaseAvailableProviders])(list, n);
	}
	dlclose(h);
	return count;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// ortAPIVersion is the C API version onnxruntime_go v1.27.0 asks for.
const ortAPIVersion = 24

// probeLibrary tries to load the shared library at path (a file path or a
// soname for the system loader) and returns the loader's reason when it
// cannot, such as the first dependency that is missing.
func probeLibrary(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if msg := C.probe_open(cpath); msg != nil {
		defer C.free(unsafe.Pointer(msg))
		return errors.New(C.GoString(msg))
	}
	return nil
}

// availableProviders asks the ONNX Runtime library at lib which execution
// providers it was built with, such as CPUExecutionProvider and
// CUDAExecutionProvider. Being built with one does not mean it can run:
// CUDA still needs its provider library, the driver and CUDA's libraries.
func availableProviders(lib string) ([]string, error) {
	const max = 32
	clib := C.CString(lib)
	defer C.free(unsafe.Pointer(clib))
	names := (*[max]*C.char)(C.malloc(C.size_t(max) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(names))
	var cerr *C.char
	n := int(C.available_providers(clib, ortAPIVersion, &names[0], max, &cerr))
	if n < 0 {
		defer C.free(unsafe.Pointer(cerr))
		return nil, fmt.Errorf("listing the providers of %s: %s", lib, C.GoString(cerr))
	}
	out := make([]string, n)
	for i := range n {
		out[i] = C.GoString(names[i])
		C.free(unsafe.Pointer(names[i]))
	}
	return out, nil
}
