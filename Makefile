# Convenience wrappers around the two README commands.
.PHONY: run test build bench
run:
	scripts/run
test:
	scripts/test
build:
	swift build
bench:
	bench/run.sh
