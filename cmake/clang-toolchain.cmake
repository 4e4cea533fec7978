# Toolchain of the `clang` preset: the compiler named by $COROSERVE_CLANG (e.g. clang++-14),
# else the newest clang++-NN (NN >= 14) on PATH, else clang++. tools/install-deps.sh test
# installs the newest clang the distro offers; Debian 12's default is clang-14.
if(DEFINED ENV{COROSERVE_CLANG} AND NOT "$ENV{COROSERVE_CLANG}" STREQUAL "")
  find_program(COROSERVE_CLANGXX NAMES "$ENV{COROSERVE_CLANG}" NO_CACHE REQUIRED)
else()
  set(candidates "")
  foreach(major RANGE 40 14 -1)
    list(APPEND candidates clang++-${major})
  endforeach()
  find_program(COROSERVE_CLANGXX NAMES ${candidates} clang++ NAMES_PER_DIR NO_CACHE)
  if(NOT COROSERVE_CLANGXX)
    message(FATAL_ERROR "clang preset: no clang++-NN (NN >= 14) or clang++ on PATH "
                        "(tools/install-deps.sh test installs one, or set COROSERVE_CLANG)")
  endif()
endif()
set(CMAKE_CXX_COMPILER "${COROSERVE_CLANGXX}" CACHE FILEPATH "C++ compiler (clang preset)")
