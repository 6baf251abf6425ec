# ctest -P script: builds the consumer project (consumer: strobe::strobe and
# strobe::serialize; consumer_bench: strobe::benchmark) against strobe, one of two ways.
#   -DMODE=installed  install STROBE_BUILD_DIR into a prefix, then find_package(strobe)
#   -DMODE=vendored   add_subdirectory(STROBE_SOURCE_DIR)
# Needs: STROBE_SOURCE_DIR, STROBE_BUILD_DIR, WORK_DIR, GENERATOR.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  message("${out}")
endfunction()
if(MODE STREQUAL "installed")
  run(${CMAKE_COMMAND} --install ${STROBE_BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${STROBE_SOURCE_DIR}/tests/package/consumer -B ${WORK_DIR}/build -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
else()
  run(${CMAKE_COMMAND} -S ${STROBE_SOURCE_DIR}/tests/package/consumer -B ${WORK_DIR}/build -G ${GENERATOR}
      -DSTROBE_SOURCE_DIR=${STROBE_SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release)
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer ${WORK_DIR}/consumer.strobe)
run(${WORK_DIR}/build/consumer_bench ${WORK_DIR}/consumer_bench.strobe)
run(${WORK_DIR}/build/consumer_otlp)
