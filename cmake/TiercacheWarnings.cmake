# Warning flags for tiercache's own targets, never propagated to consumers of the library.
#
#   tiercache_target_warnings(<target>...)
#     Adds -Wall -Wextra -Wpedantic (plus -Werror when TIERCACHE_WERROR is ON) to the targets'
#     own sources. Use it for every library, test, tool, benchmark and example target.
#
# The same flags are on the INTERFACE target `tiercache_warnings`; linking it PRIVATE works
# too for targets that are not installed (`target_link_libraries(x PRIVATE tiercache_warnings)`).
include_guard(GLOBAL)

add_library(tiercache_warnings INTERFACE)
set(_tiercache_gnu_like "$<COMPILE_LANG_AND_ID:CXX,GNU,Clang,AppleClang>")
target_compile_options(tiercache_warnings INTERFACE
  "$<${_tiercache_gnu_like}:-Wall;-Wextra;-Wpedantic>"
  "$<$<AND:${_tiercache_gnu_like},$<BOOL:${TIERCACHE_WERROR}>>:-Werror>"
  "$<$<COMPILE_LANG_AND_ID:CXX,MSVC>:/W4>"
  "$<$<AND:$<COMPILE_LANG_AND_ID:CXX,MSVC>,$<BOOL:${TIERCACHE_WERROR}>>:/WX>")
unset(_tiercache_gnu_like)

function(tiercache_target_warnings)
  foreach(target IN LISTS ARGN)
    # BUILD_INTERFACE: the helper target is not part of the exported package.
    target_link_libraries(${target} PRIVATE $<BUILD_INTERFACE:tiercache_warnings>)
  endforeach()
endfunction()
