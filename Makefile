# The developer contract: the same commands a newcomer, CI and the README use.
.PHONY: dev test test-unit lint bench

dev:            ## build the Rust codec into the source tree for quick iteration
	maturin develop --release

test:           ## every tier against a real valkey-server, then the unit tier on the reference codec
	QRUN_REQUIRE_NATIVE=1 python -m pytest
	QRUN_NATIVE=0 python -m pytest tests/unit

test-unit:
	python -m pytest tests/unit

lint:           ## Rust lints, Python types, and the .pyi against the built extension
	cargo clippy --all-targets -- -D warnings
	python -m mypy
	python -m mypy.stubtest qrun._codec

bench:          ## the bench suite (pip install -r benches/requirements.txt first for the peers)
	python -m benches
