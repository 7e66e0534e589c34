"""The README's examples are code: they run here, so they stay true."""

from __future__ import annotations

import os
import re
import unittest

import testtools

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.rst")


def python_examples() -> list[str]:
    """The literal blocks of README.rst that define test classes."""
    with open(README) as f:
        text = f.read()
    blocks = re.findall(r"::\n\n((?:    .*\n|\n)+)", text)
    code = ["\n".join(line[4:] for line in block.splitlines()) for block in blocks]
    return [block for block in code if "class Test" in block]


class TestReadme(testtools.TestCase):
    def test_examples_exist(self) -> None:
        self.assertGreaterEqual(len(python_examples()), 2)

    def test_examples_pass(self) -> None:
        namespace: dict[str, object] = {"__name__": "readme_examples"}
        for block in python_examples():
            exec(compile(block, README, "exec"), namespace)  # noqa: S102 - our own README
        cases = [
            value
            for value in namespace.values()
            if isinstance(value, type)
            and issubclass(value, unittest.TestCase)
            and value.__module__ == "readme_examples"
        ]
        self.assertGreaterEqual(len(cases), 2)
        suite = unittest.TestSuite(
            unittest.defaultTestLoader.loadTestsFromTestCase(case) for case in cases
        )
        result = unittest.TestResult()
        suite.run(result)
        problems = [text for _, text in result.errors + result.failures]
        self.assertEqual([], problems)
        self.assertGreaterEqual(result.testsRun, 2)
