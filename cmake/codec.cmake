# libzeropool-codec (include/zeropool/codec.h, src/codec/): compression on
# pooled buffers and pooled contexts, built beside the core and installed
# with it: zeropool::codec (shared) and zeropool::codec_static, pkg-config
# zeropool-codec. Each engine is optional; a missing one disables only what
# needs it (the configure output says what serves those formats instead).
# scripts/deps.sh installs all of them.
option(ZP_BUILD_CODEC "Build libzeropool-codec (src/codec/)" ON)
if(NOT ZP_BUILD_CODEC)
  return()
endif()

set(ZP_CODEC_DISABLE "" CACHE STRING
    "Engines to leave out even when found (e.g. \"ISAL;LIBDEFLATE\"): to build and test the fallbacks")

find_package(PkgConfig QUIET)

# zpc_find_engine(<NAME> <pkg-config module> <header> <library> <what is lost>)
# sets ZPC_<NAME>_FOUND, ZPC_<NAME>_LIBS (absolute paths), ZPC_<NAME>_INCS.
function(zpc_find_engine name module header lib lost)
  set(found FALSE)
  if(name IN_LIST ZP_CODEC_DISABLE)
    message(STATUS "zeropool-codec: ${name} left out (ZP_CODEC_DISABLE): ${lost}")
    set(ZPC_${name}_FOUND FALSE PARENT_SCOPE)
    return()
  endif()
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(ZPC_PC_${name} QUIET ${module})
    if(ZPC_PC_${name}_FOUND)
      set(found TRUE)
      set(libs ${ZPC_PC_${name}_LINK_LIBRARIES})
      set(incs ${ZPC_PC_${name}_INCLUDE_DIRS})
    endif()
  endif()
  if(NOT found)
    find_path(ZPC_${name}_INCLUDE_DIR ${header})
    find_library(ZPC_${name}_LIBRARY ${lib})
    if(ZPC_${name}_INCLUDE_DIR AND ZPC_${name}_LIBRARY)
      set(found TRUE)
      set(libs ${ZPC_${name}_LIBRARY})
      set(incs ${ZPC_${name}_INCLUDE_DIR})
    endif()
  endif()
  if(found)
    message(STATUS "zeropool-codec: ${name} found (${libs})")
  else()
    message(STATUS "zeropool-codec: ${name} not found: ${lost}")
  endif()
  set(ZPC_${name}_FOUND ${found} PARENT_SCOPE)
  set(ZPC_${name}_LIBS "${libs}" PARENT_SCOPE)
  set(ZPC_${name}_INCS "${incs}" PARENT_SCOPE)
endfunction()

zpc_find_engine(ZLIB zlib zlib.h z
  "gzip/deflate/zlib streaming decompression disabled, streaming compression at levels 4-9 served by isa-l (level 3)")
zpc_find_engine(LIBDEFLATE libdeflate libdeflate.h deflate
  "gzip/deflate/zlib one-shot served by isa-l (compression, levels 1-3) and zlib")
zpc_find_engine(ISAL libisal isa-l/igzip_lib.h isal
  "gzip/deflate/zlib compression at levels 1-3 served by libdeflate (one-shot) and zlib (streaming)")
zpc_find_engine(ZSTD libzstd zstd.h zstd "zstd disabled")
zpc_find_engine(LZ4 liblz4 lz4frame.h lz4 "lz4 disabled")

set(ZPC_SOURCES
  src/codec/codec.c
  src/codec/stream.c
  src/codec/engine_isal.c
  src/codec/engine_deflate.c
  src/codec/engine_zlib.c
  src/codec/engine_zstd.c
  src/codec/engine_lz4.c)
list(TRANSFORM ZPC_SOURCES PREPEND "${PROJECT_SOURCE_DIR}/")

set(ZPC_DEFS "")
set(ZPC_LIBS "")
set(ZPC_INCS "")
set(ZPC_PC_REQUIRES "")
foreach(e ZLIB LIBDEFLATE ISAL ZSTD LZ4)
  if(ZPC_${e}_FOUND)
    list(APPEND ZPC_DEFS ZPC_HAVE_${e})
    list(APPEND ZPC_LIBS ${ZPC_${e}_LIBS})
    list(APPEND ZPC_INCS ${ZPC_${e}_INCS})
  endif()
endforeach()
foreach(pair "ZLIB:zlib" "LIBDEFLATE:libdeflate" "ISAL:libisal" "ZSTD:libzstd" "LZ4:liblz4")
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 e)
  list(GET pair 1 m)
  if(ZPC_PC_${e}_FOUND)
    string(APPEND ZPC_PC_REQUIRES " ${m}")
  endif()
endforeach()

function(zpc_library_setup target)
  target_include_directories(${target}
    PUBLIC
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${ZPC_INCS})
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE= ${ZPC_DEFS})
  target_link_libraries(${target} PRIVATE ${ZPC_LIBS})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME zeropool-codec
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
endfunction()

add_library(zeropool_codec SHARED ${ZPC_SOURCES})
zpc_library_setup(zeropool_codec)
target_link_libraries(zeropool_codec PUBLIC zeropool)
set_target_properties(zeropool_codec PROPERTIES
  VERSION ${PROJECT_VERSION}
  SOVERSION ${ZP_SOVERSION}  # the soname policy: CMakeLists.txt, CHANGELOG.md
  EXPORT_NAME codec)
# its own version script: the functions of codec.h, by name, each in the
# node of the release that added it (ZEROPOOL_CODEC_0.2, ...)
zp_version_script(zeropool_codec "${PROJECT_SOURCE_DIR}/src/codec/zeropool-codec.map")

add_library(zeropool_codec_static STATIC ${ZPC_SOURCES})
zpc_library_setup(zeropool_codec_static)
target_link_libraries(zeropool_codec_static PUBLIC zeropool_static)
set_target_properties(zeropool_codec_static PROPERTIES EXPORT_NAME codec_static)

add_library(zeropool::codec ALIAS zeropool_codec)
add_library(zeropool::codec_static ALIAS zeropool_codec_static)

install(TARGETS zeropool_codec zeropool_codec_static
  EXPORT zeropoolTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# zeropool-codec.pc, with the same relocatable prefix as zeropool.pc
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(ZPC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH ZPC_PC_UP "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" ZPC_PC_UP "${ZPC_PC_UP}")
  set(ZPC_PC_PREFIX "\${pcfiledir}/${ZPC_PC_UP}")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/zeropool-codec.pc.in"
               "${PROJECT_BINARY_DIR}/zeropool-codec.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/zeropool-codec.pc"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
