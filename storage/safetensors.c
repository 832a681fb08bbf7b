/* safetensors.c: placeholder until the reader lands (vqs_store_st.h). */
#include "vqs_store.h"
