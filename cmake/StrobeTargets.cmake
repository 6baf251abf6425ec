# Helpers shared by strobe's CMake files (and installed for find_package consumers).

# Debian's libconcurrentqueue-dev ships headers only (/usr/include/concurrentqueue/),
# no CMake config: wrap it in an imported target.
function(strobe_import_concurrentqueue)
  if(TARGET strobe_concurrentqueue)
    return()
  endif()
  find_path(STROBE_CONCURRENTQUEUE_INCLUDE concurrentqueue/concurrentqueue.h REQUIRED)
  add_library(strobe_concurrentqueue INTERFACE IMPORTED GLOBAL)
  target_include_directories(strobe_concurrentqueue INTERFACE ${STROBE_CONCURRENTQUEUE_INCLUDE})
endfunction()

# Applies STROBE_SANITIZE to one target (never through global flags).
function(strobe_sanitize target)
  if(STROBE_SANITIZE STREQUAL "thread")
    set(flags -fsanitize=thread -g -O1)
  elseif(STROBE_SANITIZE STREQUAL "address")
    set(flags -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
  elseif(STROBE_SANITIZE STREQUAL "")
    return()
  else()
    message(FATAL_ERROR "STROBE_SANITIZE must be thread, address or empty, not '${STROBE_SANITIZE}'")
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_compile_options(${target} INTERFACE ${flags})
    target_link_options(${target} INTERFACE ${flags})
  else()
    target_compile_options(${target} PRIVATE ${flags})
    target_link_options(${target} PUBLIC ${flags})
  endif()
endfunction()
