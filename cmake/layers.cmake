# Layering of src/: each folder is one static library, and dependencies run one way:
#   common <- operators <- stage <- coordinator ;  common <- api ;  cli links what it needs.
# nu_add_layer() builds the library and refuses, at configure time, any #include of a layer the
# library may not see, so a wrong-way dependency fails the build instead of slipping in.

set(NU_LAYER_ALLOWED_common "common")
set(NU_LAYER_ALLOWED_operators "common;operators")
set(NU_LAYER_ALLOWED_stage "common;operators;stage")
set(NU_LAYER_ALLOWED_coordinator "common;operators;stage;coordinator")
set(NU_LAYER_ALLOWED_api "common;api")
set(NU_LAYER_ALLOWED_cli "common;operators;stage;coordinator;api;cli")
set(NU_LAYERS common operators stage coordinator api cli)

function(nu_check_layer layer)
  file(GLOB_RECURSE files CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/src/${layer}/*.c ${PROJECT_SOURCE_DIR}/src/${layer}/*.h)
  foreach(f IN LISTS files)
    file(STRINGS ${f} includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"[a-z_]+/")
    foreach(inc IN LISTS includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([a-z_]+)/.*" "\\1" target_layer "${inc}")
      if(target_layer IN_LIST NU_LAYERS AND NOT target_layer IN_LIST NU_LAYER_ALLOWED_${layer})
        message(FATAL_ERROR "layering: ${f} (layer '${layer}') includes '${target_layer}/', "
                            "which '${layer}' may not depend on")
      endif()
    endforeach()
  endforeach()
endfunction()

# nu_add_layer(<layer> [DEPS <libs>...]) — static library nu_<layer> from src/<layer>/*.c.
function(nu_add_layer layer)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  nu_check_layer(${layer})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${layer}/*.c)
  list(FILTER srcs EXCLUDE REGEX ".*/main\\.c$")
  if(srcs)
    add_library(nu_${layer} STATIC ${srcs})
    target_include_directories(nu_${layer} PUBLIC ${PROJECT_SOURCE_DIR}/src
                                                  ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(nu_${layer} PUBLIC ${ARG_DEPS})
  else()
    add_library(nu_${layer} INTERFACE)
    target_include_directories(nu_${layer} INTERFACE ${PROJECT_SOURCE_DIR}/src
                                                     ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(nu_${layer} INTERFACE ${ARG_DEPS})
  endif()
endfunction()
