# The manual (man/, one source file per page in man(7) format; names that
# share a page are one-line .so links): installed under share/man with the
# library each page documents. tests/man/check_man.py checks that every
# page renders without a warning and that every public name has its page.
#
#   man1/zpz.1            with zpz (tools/zpz)
#   man3/zp_bufring*      with libzeropool-uring
#   man3/zp_codec*, zp_compress*, zp_decompress*, zp_zstream*
#                         with libzeropool-codec
#   man3/* (the rest), man7/zeropool.7
#                         with libzeropool
option(ZP_INSTALL_MAN "Install the manual pages (man/) under CMAKE_INSTALL_MANDIR" ON)
if(NOT ZP_INSTALL_MAN)
  return()
endif()

set(ZP_MAN_DIR "${PROJECT_SOURCE_DIR}/man")
file(GLOB ZP_MAN3 CONFIGURE_DEPENDS "${ZP_MAN_DIR}/man3/*.3")
set(ZP_MAN3_CORE "")
set(ZP_MAN3_CODEC "")
set(ZP_MAN3_URING "")
foreach(page IN LISTS ZP_MAN3)
  get_filename_component(name "${page}" NAME)
  if(name MATCHES "^zp_bufring")
    list(APPEND ZP_MAN3_URING "${page}")
  elseif(name MATCHES "^(zp_codec|zp_compress|zp_decompress|zp_zstream)")
    list(APPEND ZP_MAN3_CODEC "${page}")
  else()
    list(APPEND ZP_MAN3_CORE "${page}")
  endif()
endforeach()

install(FILES ${ZP_MAN3_CORE} DESTINATION "${CMAKE_INSTALL_MANDIR}/man3")
install(FILES "${ZP_MAN_DIR}/man7/zeropool.7" DESTINATION "${CMAKE_INSTALL_MANDIR}/man7")
if(TARGET zeropool_codec AND ZP_MAN3_CODEC)
  install(FILES ${ZP_MAN3_CODEC} DESTINATION "${CMAKE_INSTALL_MANDIR}/man3")
endif()
if(TARGET zeropool_uring AND ZP_MAN3_URING)
  install(FILES ${ZP_MAN3_URING} DESTINATION "${CMAKE_INSTALL_MANDIR}/man3")
endif()
if(TARGET zpz AND EXISTS "${ZP_MAN_DIR}/man1/zpz.1")
  install(FILES "${ZP_MAN_DIR}/man1/zpz.1" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
endif()
