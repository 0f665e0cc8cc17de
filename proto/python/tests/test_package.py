"""The client is used as an installed package (pip install ./proto/python), not from the source folder."""
import importlib.metadata
import os
import sysconfig

import zrank_client


def test_zrank_client_is_imported_from_the_installed_package():
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    assert os.path.realpath(zrank_client.__file__).startswith(site + os.sep), zrank_client.__file__


def test_the_distribution_declares_its_minimum_dependencies():
    meta = importlib.metadata.metadata("zrank-client")
    assert meta["Name"] == "zrank-client"
    requires = importlib.metadata.requires("zrank-client")
    assert any(r.replace(" ", "").startswith("pyzmq>=") for r in requires), requires
    assert any(r.replace(" ", "").startswith("protobuf>=") for r in requires), requires
