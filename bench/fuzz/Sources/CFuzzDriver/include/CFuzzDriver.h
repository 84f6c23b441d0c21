// libFuzzer's driver, for an executable whose `main` is not libFuzzer's: SwiftPM links every
// executable target with `main` defined as `<Target>_main`, so the Swift target defines that
// and hands over to libFuzzer here.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
