# -*- coding: utf-8 -*-
"""plugins/filter mirrors filter_plugins/ file by file.

The filters live in the top-level filter_plugins/ (where a clone loads them, filter_plugins = ./filter_plugins);
the collection loads plugins/filter/. plugins/filter is a real directory holding one relative symlink per
filter file: ansible-test's sanity test `symlinks` refuses a symlinked directory, and ansible-galaxy keeps
file symlinks that stay inside the collection. A filter added to filter_plugins/ without its link would
work from a clone and be missing from the built collection; this test says so.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FILTERS = os.path.join(ROOT, "filter_plugins")
PLUGINS = os.path.join(ROOT, "plugins", "filter")


def test_plugins_filter_is_a_directory_not_a_symlink():
    assert os.path.isdir(PLUGINS) and not os.path.islink(PLUGINS)


def test_every_filter_file_has_a_relative_link_in_plugins_filter():
    filters = sorted(n for n in os.listdir(FILTERS) if n.endswith(".py"))
    assert filters, "no filter in filter_plugins/"
    for name in filters:
        link = os.path.join(PLUGINS, name)
        assert os.path.islink(link), "plugins/filter/%s: missing; ln -s ../../filter_plugins/%s plugins/filter/" % (name, name)
        assert os.readlink(link) == "../../filter_plugins/" + name, "plugins/filter/%s -> %s" % (name, os.readlink(link))


def test_plugins_filter_holds_only_links_to_filter_plugins():
    extra = sorted(n for n in os.listdir(PLUGINS)
                   if n != "__pycache__" and not os.path.exists(os.path.join(FILTERS, n)))
    assert not extra, "plugins/filter has files that filter_plugins/ does not: %s" % extra
