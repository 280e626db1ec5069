# CUDA for the GPU sample engine (native_examples/digits_cuda) and its C test,
# enabled only where a working CUDA compiler is found: without the toolkit
# everything else builds exactly as before. Sets AIGES_HAVE_CUDA.
#   -DAIGES_CUDA=OFF                     never look for CUDA
#   -DCMAKE_CUDA_ARCHITECTURES="80;90"   GPUs to build for (default below)
option(AIGES_CUDA "Build the CUDA sample engine when a CUDA compiler is found" ON)
set(AIGES_HAVE_CUDA OFF)

if(NOT AIGES_CUDA)
  message(STATUS "CUDA sample engine: off (AIGES_CUDA=OFF)")
elseif(AIGES_ASAN)
  # ASan's flags are host-compiler flags, and a CUDA runtime under ASan needs
  # its own options (protect_shadow_gap=0): the GPU engine is tested in the
  # plain build only.
  message(STATUS "CUDA sample engine: not built under AIGES_ASAN")
elseif(CMAKE_VERSION VERSION_LESS 3.18)
  message(STATUS "CUDA sample engine: needs CMake 3.18 or later")
else()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Set before enable_language, which would otherwise pick the compiler's
    # oldest default. "native" is no default: build machines often have no GPU.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      execute_process(COMMAND ${CMAKE_CUDA_COMPILER} --version
                      OUTPUT_VARIABLE _aiges_nvcc ERROR_QUIET)
      if(_aiges_nvcc MATCHES "release ([0-9]+\\.[0-9]+)"
         AND CMAKE_MATCH_1 VERSION_GREATER_EQUAL 11.8)
        # Turing (T4), Ampere and Ada (A100, A10, L4: sm_80 code runs on 8.x),
        # Hopper (H100) with PTX that newer GPUs compile when they load it.
        set(CMAKE_CUDA_ARCHITECTURES 75-real 80-real 90)
      endif()
    endif()
    enable_language(CUDA)
    set(AIGES_HAVE_CUDA ON)
    message(STATUS "CUDA sample engine: built for ${CMAKE_CUDA_ARCHITECTURES}")
  else()
    message(STATUS "CUDA sample engine: not built (no CUDA compiler found)")
  endif()
endif()
