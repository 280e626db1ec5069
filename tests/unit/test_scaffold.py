"""`aiges create` (aiges/scaffold.py, aiges/tool.py) without compilers or servers."""
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

from aiges import scaffold, tool

EXPECTED = {
    "c": {"CMakeLists.txt", "README.md", "aiges.toml", ".gitignore", "src/engine.c",
          "tests/test_engine.c"},
    "python": {"wrapper.py", "test_wrapper.py", "README.md", "aiges.toml", ".gitignore"},
}


@pytest.mark.parametrize("name", ["demo", "Demo2", "my_engine", "my-engine", "a", "x" * 64])
def test_good_names(name):
    assert scaffold.validate_name(name, "c") == name


@pytest.mark.parametrize("name", ["", "2fast", "-x", "_x", "a b", "a/b", "../a", "a.b", "é",
                                  "x" * 65, "{{name}}"])
def test_bad_names_are_refused(name):
    with pytest.raises(scaffold.ScaffoldError, match="invalid project name"):
        scaffold.validate_name(name)


@pytest.mark.parametrize("name", ["test", "all", "Install", "clean"])
def test_cmake_reserved_names_are_refused_for_c_only(name):
    with pytest.raises(scaffold.ScaffoldError, match="CMake reserves"):
        scaffold.validate_name(name, "c")
    assert scaffold.validate_name(name, "python") == name


def test_unknown_language():
    with pytest.raises(scaffold.ScaffoldError, match="unknown language"):
        scaffold.create("demo", "rust")


@pytest.mark.parametrize("lang", scaffold.LANGS)
def test_every_template_renders_without_placeholders(tmp_path, lang):
    project = scaffold.create("my-engine", lang, tmp_path)
    assert project.root == tmp_path / "my-engine"
    written = {p.as_posix() for p in project.files}
    assert written == EXPECTED[lang]
    assert len(project.files) == len(scaffold.template_files(lang))
    on_disk = {p.relative_to(project.root).as_posix()
               for p in project.root.rglob("*") if p.is_file()}
    assert on_disk == written
    for path in written:
        text = (project.root / path).read_text()
        assert "{{" not in text, path
        assert not path.endswith(".tmpl") and "dot-" not in path
    assert "my-engine" in (project.root / "README.md").read_text()
    tomllib.loads((project.root / "aiges.toml").read_text())


def test_python_project_is_valid_python(tmp_path):
    root = scaffold.create("pydemo", "python", tmp_path).root
    for name in ("wrapper.py", "test_wrapper.py"):
        compile((root / name).read_text(), name, "exec")
    assert 'serviceId = "pydemo"' in (root / "wrapper.py").read_text()
    # The tests run where `make serve` installed aiges, which has no pytest.
    assert "pytest" not in (root / "test_wrapper.py").read_text().split('"""')[2]


def test_c_project_names_the_library(tmp_path):
    root = scaffold.create("demo", "c", tmp_path).root
    cmake = (root / "CMakeLists.txt").read_text()
    assert "add_library(demo SHARED src/engine.c)" in cmake
    assert "--include-dir" in cmake and "AIGES_INCLUDE_DIR" in cmake
    assert f"set(AIGES_PYTHON [[{sys.executable}]] CACHE FILEPATH" in cmake
    assert '#include "wrapper.h"' in (root / "src" / "engine.c").read_text()


@pytest.mark.parametrize("lang", scaffold.LANGS)
def test_commands_name_the_python_that_created_the_project(tmp_path, lang):
    project = scaffold.create("demo", lang, tmp_path)
    venv_bin = Path(sys.executable).parent
    load = shlex.quote(str(venv_bin / "aiges-load"))
    serve = {"c": f"{load} build/libdemo.so -c aiges.toml",
             "python": f"{load} wrapper.py -c aiges.toml"}[lang]
    test = {"c": "cmake -S . -B build && cmake --build build && ctest --test-dir build",
            "python": f"{shlex.quote(sys.executable)} -m unittest -v"}[lang]
    assert project.next_steps == [f"cd {shlex.quote(str(project.root))}", test, serve]
    readme = (project.root / "README.md").read_text()
    for step in project.next_steps[1:]:
        assert f"\n{step}" in readme, step  # each one a line of a command block


def test_paths_with_spaces_and_quotes_are_quoted(tmp_path):
    python = "/opt/my env/it's]]/bin/python"
    project = scaffold.create("demo", "python", tmp_path / "a b", python=python)
    quoted = shlex.quote(python)
    assert project.next_steps == [
        f"cd '{tmp_path}/a b/demo'", f"{quoted} -m unittest -v",
        f"{quoted} -m aiges.cli wrapper.py -c aiges.toml"]  # no aiges-load beside it
    assert shlex.split(project.next_steps[1]) == [python, "-m", "unittest", "-v"]
    cmake = (scaffold.create("cdemo", "c", tmp_path, python=python).root
             / "CMakeLists.txt").read_text()
    assert f"set(AIGES_PYTHON [=[{python}]=] CACHE" in cmake


@pytest.mark.parametrize("text, quoted", [
    ("/usr/bin/python", "[[/usr/bin/python]]"),
    ("/a]]b", "[=[/a]]b]=]"),
    ("/a]]b]=]c", "[==[/a]]b]=]c]==]"),
    ("${HOME}/x\\y\"z;w", '[[${HOME}/x\\y\"z;w]]'),
])
def test_cmake_bracket_takes_any_path_literally(text, quoted):
    assert scaffold.cmake_bracket(text) == quoted


def test_a_path_looking_like_a_placeholder_is_not_rendered_again():
    values = scaffold.placeholders("demo", "/x/{{name}}/python")
    assert scaffold.render("{{python}} {{name}} {{other}}", values) == \
        "'/x/{{name}}/python' demo {{other}}"


def test_file_names_take_the_placeholder_too():
    assert scaffold.target_path(Path("src/{{name}}.c.tmpl"), {"name": "x"}) == Path("src/x.c")
    assert scaffold.target_path(Path("dot-gitignore.tmpl"), {"name": "x"}) == Path(".gitignore")


def test_an_empty_directory_is_used(tmp_path):
    (tmp_path / "demo").mkdir()
    assert scaffold.create("demo", "c", tmp_path).files


def test_a_non_empty_directory_is_not_overwritten(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "wrapper.py").write_text("mine")
    with pytest.raises(scaffold.ScaffoldError, match="not empty"):
        scaffold.create("demo", "python", tmp_path)
    assert (tmp_path / "demo" / "wrapper.py").read_text() == "mine"
    assert [p.name for p in (tmp_path / "demo").iterdir()] == ["wrapper.py"]


def test_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "demo").write_text("x")
    with pytest.raises(scaffold.ScaffoldError, match="not a directory"):
        scaffold.create("demo", "c", tmp_path)


def test_cli_create_defaults_to_python_in_the_current_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert tool.main(["create", "-n", "demo"]) == 0
    assert (tmp_path / "demo" / "wrapper.py").is_file()
    out = capsys.readouterr().out.splitlines()
    assert out[out.index("next:") + 1:] == [
        "  cd demo", f"  {shlex.quote(sys.executable)} -m unittest -v",
        f"  {shlex.quote(str(Path(sys.executable).parent / 'aiges-load'))} wrapper.py "
        "-c aiges.toml"]


def test_cli_create_into_dir(tmp_path):
    assert tool.main(["create", "-n", "demo", "--lang", "c", "--dir", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "demo" / "CMakeLists.txt").is_file()


@pytest.mark.parametrize("argv, message", [
    (["create", "-n", "bad name"], "invalid project name"),
    (["create", "-n", "demo"], "not empty"),
])
def test_cli_errors_exit_2_with_a_message(tmp_path, capsys, argv, message):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep").write_text("")
    assert tool.main([*argv, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aiges create: error:") and message in err


def test_cli_rejects_unknown_language():
    with pytest.raises(SystemExit) as exc:
        tool.main(["create", "-n", "demo", "--lang", "go"])
    assert exc.value.code == 2


def test_include_dir_holds_the_headers(capsys):
    assert tool.main(["--include-dir"]) == 0
    directory = Path(capsys.readouterr().out.strip())
    assert (directory / "wrapper.h").is_file() and (directory / "type.h").is_file()


def test_no_command_prints_help(capsys):
    assert tool.main([]) == 2
    assert "create" in capsys.readouterr().err
