// Declarations only (include/FuzzDriver.h); libFuzzer provides the symbols.
#include "FuzzDriver.h"
