# HFPORT_CUDA: whether the CUDA kernels are compiled, and for which GPUs.
#   AUTO  (default) when nvcc is found: for the architecture of the GPU nvidia-smi shows, or, with
#         no GPU visible (a build machine), for the listed ones (HFPORT_CUDA_LISTED_ARCHITECTURES);
#         without nvcc, a CPU-only build.
#   ON    as AUTO, but a missing nvcc fails the configure.
#   OFF   never; a CPU-only build (minutes shorter).
# CMAKE_CUDA_ARCHITECTURES (or the CUDAARCHS environment variable), when set, wins over both.
# The environment variable HFPORT_CUDA gives the default, so `HFPORT_CUDA=OFF pip install .` works
# as well as `pip install . -Ccmake.define.HFPORT_CUDA=OFF`.
# Prints one line saying what it chose and why; sets HFPORT_HAS_CUDA.

if(DEFINED ENV{HFPORT_CUDA} AND NOT "$ENV{HFPORT_CUDA}" STREQUAL "")
  set(_hfport_cuda_default "$ENV{HFPORT_CUDA}")
else()
  set(_hfport_cuda_default AUTO)
endif()
set(HFPORT_CUDA ${_hfport_cuda_default} CACHE STRING "Compile the CUDA kernels: AUTO, ON or OFF")
set_property(CACHE HFPORT_CUDA PROPERTY STRINGS AUTO ON OFF)
set(HFPORT_CUDA_LISTED_ARCHITECTURES "80;90a" CACHE STRING
    "CUDA architectures HFPORT_CUDA=AUTO/ON builds for when no GPU is visible")

string(TOUPPER "${HFPORT_CUDA}" _hfport_cuda_mode)
if(_hfport_cuda_mode MATCHES "^(ON|YES|TRUE|1)$")
  set(_hfport_cuda_mode ON)
elseif(_hfport_cuda_mode MATCHES "^(OFF|NO|FALSE|0)$")
  set(_hfport_cuda_mode OFF)
elseif(NOT _hfport_cuda_mode STREQUAL "AUTO")
  message(FATAL_ERROR "HFPORT_CUDA is '${HFPORT_CUDA}'; expected AUTO, ON or OFF")
endif()

set(HFPORT_HAS_CUDA OFF)
if(_hfport_cuda_mode STREQUAL "OFF")
  set(_hfport_cuda_why "CUDA off: HFPORT_CUDA=OFF")
else()
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    if(_hfport_cuda_mode STREQUAL "ON")
      message(FATAL_ERROR "HFPORT_CUDA=ON, but no CUDA compiler was found (nvcc on PATH, "
                          "/usr/local/cuda/bin/nvcc, CUDACXX or CMAKE_CUDA_COMPILER): install the "
                          "CUDA toolkit, or build for the CPU only with HFPORT_CUDA=OFF")
    endif()
    set(_hfport_cuda_why "CUDA off: HFPORT_CUDA=AUTO and no nvcc found")
  else()
    if(DEFINED CMAKE_CUDA_ARCHITECTURES OR DEFINED ENV{CUDAARCHS})
      set(_hfport_arch_why "as CMAKE_CUDA_ARCHITECTURES / CUDAARCHS say")
    else()
      set(_hfport_gpu_caps "")
      find_program(HFPORT_NVIDIA_SMI nvidia-smi)
      if(HFPORT_NVIDIA_SMI)
        execute_process(COMMAND ${HFPORT_NVIDIA_SMI} --query-gpu=name,compute_cap
                                --format=csv,noheader
                        OUTPUT_VARIABLE _hfport_gpus RESULT_VARIABLE _hfport_smi_rc
                        OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET TIMEOUT 30)
        if(_hfport_smi_rc EQUAL 0 AND _hfport_gpus)
          string(REPLACE "\n" ";" _hfport_gpus "${_hfport_gpus}")
          foreach(_gpu IN LISTS _hfport_gpus)
            if(_gpu MATCHES "^(.*), *([0-9]+)\\.([0-9]+)$")
              set(_arch "${CMAKE_MATCH_2}${CMAKE_MATCH_3}")
              # Hopper's arch-specific features (sm_90a), as in the listed architectures.
              if(_arch STREQUAL "90")
                set(_arch 90a)
              endif()
              list(APPEND _hfport_gpu_caps ${_arch})
              set(_hfport_gpu_name "${CMAKE_MATCH_1}")
            endif()
          endforeach()
          list(REMOVE_DUPLICATES _hfport_gpu_caps)
        endif()
      endif()
      if(_hfport_gpu_caps)
        set(CMAKE_CUDA_ARCHITECTURES ${_hfport_gpu_caps})
        set(_hfport_arch_why "for the GPU nvidia-smi shows (${_hfport_gpu_name})")
      else()
        set(CMAKE_CUDA_ARCHITECTURES ${HFPORT_CUDA_LISTED_ARCHITECTURES})
        set(_hfport_arch_why
            "for the listed architectures (HFPORT_CUDA_LISTED_ARCHITECTURES): nvidia-smi shows no GPU")
      endif()
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(HFPORT_HAS_CUDA ON)
    string(CONCAT _hfport_cuda_why "CUDA on (HFPORT_CUDA=${_hfport_cuda_mode}, nvcc "
           "${CMAKE_CUDA_COMPILER_VERSION}): sm ${CMAKE_CUDA_ARCHITECTURES} ${_hfport_arch_why}")
  endif()
endif()
message(STATUS "hfport: ${_hfport_cuda_why}")
