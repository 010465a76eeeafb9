# Set-up and entry points. `make install` is idempotent: it installs what is missing and nothing else.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := runc conmon tini libseccomp2 busybox-static nftables iproute2 util-linux procps kmod socat iperf3 \
	docker-registry docker-compose umoci skopeo mmdebstrap openssl \
	gcc libc6-dev
STAMP := $(VENV)/.installed

.PHONY: install demo test unit integration clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; }; \
	fi
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: install
	bash scripts/demo.sh

test: install
	$(PY) -m pytest -q -p no:cacheprovider tests

unit: install
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

integration: install
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

clean:
	rm -rf $(VENV) build src/*.egg-info
