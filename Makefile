# make demo: the live bridge demo (root; Ctrl-C stops it and removes the testbed).
# make test: the whole suite, as .ci/run runs it (root for the live tests).
# Both install the Debian packages they need first (scripts/install-deps).
.PHONY: demo test

demo:
	scripts/install-deps live
	scripts/demo

test:
	scripts/install-deps all
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace --release
	$(MAKE) -C kmod check-all
