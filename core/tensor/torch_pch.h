// Precompiled once for every translation unit of vlm_torch (see core/CMakeLists.txt).
#pragma once
#include <torch/torch.h>
