# The vector kernels (core/wk_*_avx2.c, core/wk_*_avx512.c) are compiled for
# their instruction set and only called after a run-time check of the CPU
# (core/wmat.c ifp_isa_best); the rest of the library stays portable.
# Included by core/CMakeLists.txt and tests/fuzz/CMakeLists.txt (source file
# properties are per directory) with IFP_WK_DIR = the core folder.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  file(GLOB IFP_WK_AVX2 CONFIGURE_DEPENDS ${IFP_WK_DIR}/wk_*_avx2.c)
  file(GLOB IFP_WK_AVX512 CONFIGURE_DEPENDS ${IFP_WK_DIR}/wk_*_avx512.c)
  set_source_files_properties(${IFP_WK_AVX2} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${IFP_WK_AVX512} PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx2;-mfma;-mf16c")
endif()
