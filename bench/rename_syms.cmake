# bench/rename_syms.cmake — copies a static library with every global symbol
# it defines renamed PREFIX<name> (definitions and the references between
# its own objects alike), so that a second build of zeropool can be linked
# into one program next to the first (zp_bench_twin, zp_icount_twin).
#
#   cmake -DNM=nm -DOBJCOPY=objcopy -DLIB_IN=lib.a -DLIB_OUT=out.a -DPREFIX=zpnc_ \
#         -P rename_syms.cmake
foreach(v NM OBJCOPY LIB_IN LIB_OUT PREFIX)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "rename_syms.cmake: -D${v}=... is required")
  endif()
endforeach()

execute_process(COMMAND "${NM}" -g --defined-only "${LIB_IN}"
                OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "rename_syms.cmake: ${NM} failed on ${LIB_IN}")
endif()
string(REPLACE "\n" ";" lines "${syms}")
set(map "")
set(seen "")
foreach(line IN LISTS lines)
  # "<address> <type> <name>"; archive member headers have one field
  if(line MATCHES "^[0-9a-fA-F]+ [A-Za-z] ([A-Za-z_][A-Za-z0-9_.]*)$")
    set(name "${CMAKE_MATCH_1}")
    list(FIND seen "${name}" found)
    if(found EQUAL -1)
      list(APPEND seen "${name}")
      string(APPEND map "${name} ${PREFIX}${name}\n")
    endif()
  endif()
endforeach()
if(map STREQUAL "")
  message(FATAL_ERROR "rename_syms.cmake: no global symbols in ${LIB_IN}")
endif()
file(WRITE "${LIB_OUT}.syms" "${map}")
execute_process(COMMAND "${OBJCOPY}" "--redefine-syms=${LIB_OUT}.syms" "${LIB_IN}" "${LIB_OUT}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "rename_syms.cmake: ${OBJCOPY} failed on ${LIB_IN}")
endif()
