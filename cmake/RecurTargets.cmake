# Helpers that give every Recur target the same warnings and naming.

set(RECUR_WARNINGS -Wall -Wextra -Wpedantic -Werror)

# recur_library(<folder> SOURCES ... DEPS ...) -> target recur_<folder>, alias recur::<folder>
function(recur_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(recur_${name} STATIC ${ARG_SOURCES})
  add_library(recur::${name} ALIAS recur_${name})
  target_include_directories(recur_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(recur_${name} PRIVATE ${RECUR_WARNINGS})
  target_link_libraries(recur_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# recur_test(<name> LABEL <label> SOURCES ... DEPS ...) -> one GoogleTest executable,
# each test registered with CTest under the given label.
function(recur_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${RECUR_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name} PROPERTIES LABELS ${ARG_LABEL} DISCOVERY_TIMEOUT 60)
endfunction()
