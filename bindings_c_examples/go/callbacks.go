package vlmrt

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// vlmrtGoOnToken is the token callback the library calls during Session.Generate; user_data carries a
// cgo.Handle of the Go function.
//
//export vlmrtGoOnToken
func vlmrtGoOnToken(promptIndex C.size_t, token C.int64_t, userData unsafe.Pointer) C.int {
	onToken := cgo.Handle(uintptr(userData)).Value().(func(int, int64) bool)
	if onToken(int(promptIndex), int64(token)) {
		return 1
	}
	return 0
}
