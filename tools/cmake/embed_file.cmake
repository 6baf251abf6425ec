# cmake -DINPUT=<file> -DOUTPUT=<header> -DNAME=<identifier> -P embed_file.cmake
#
# Writes a header holding the bytes of INPUT as `inline constexpr unsigned char NAME[]` (NUL-
# terminated) and `NAME_size` (without the NUL). A byte array rather than a string
# literal: no delimiter to collide with, no compiler limit on literal length.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# 32 bytes a line keeps the generated file readable in an editor.
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
set(content "#pragma once\n// Generated from ${INPUT}; do not edit.\n#include <cstddef>\n\n")
string(APPEND content "inline constexpr unsigned char ${NAME}[] = {\n${bytes}0x00};\n")
string(APPEND content "inline constexpr std::size_t ${NAME}_size = ${size};\n")
file(WRITE "${OUTPUT}" "${content}")
