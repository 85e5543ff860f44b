// zlib, for reading gzip-compressed usage traces (`trace.jsonl.gz`).
#include <zlib.h>
