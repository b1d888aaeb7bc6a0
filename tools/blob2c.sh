#!/bin/sh
# blob2c.sh NAME ELF OUT.h: flat binary of a blob as a C array, plus the
# offsets of its exported symbols (those named NAME_*).
set -e
name=$1; elf=$2; out=$3
tmp=$(mktemp)
objcopy -O binary --only-section=.blob "$elf" "$tmp"
{
	echo "/* generated from $elf by tools/blob2c.sh: do not edit */"
	echo "#pragma once"
	nm "$elf" | awk -v n="$name" '$3 ~ "^"n"_" { printf "#define %s_OFF 0x%s\n", toupper($3), $1 }'
	echo "static const unsigned char ${name}_blob[] __attribute__((aligned(4096))) = {"
	xxd -i < "$tmp"
	echo "};"
	echo "#define ${name}_blob_size sizeof(${name}_blob)"
} > "$out"
rm -f "$tmp"
