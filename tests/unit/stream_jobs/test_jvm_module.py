"""The JVM module (stream_jobs/jvm) stays in step with the Python side it is compiled and tested
against: the Flink it declares `provided` is the PyFlink release installed here, and the detector
configuration its JUnit tests read is the one schemas/detectors.py defines today."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pyflink.version

from tokenpulse.jars import JVM_MODULE, UDF_SOURCES
from tokenpulse.schemas.detectors import DetectorConfig

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _pom_property(name: str) -> str:
    root = ET.parse(JVM_MODULE / "pom.xml").getroot()
    node = root.find(f"m:properties/m:{name}", POM_NS)
    assert node is not None, f"pom.xml has no <{name}> property"
    return node.text.strip()


def test_the_module_compiles_against_the_installed_pyflink_release():
    assert _pom_property("flink.version") == pyflink.version.__version__


def test_the_shaded_jackson_it_compiles_against_is_the_one_pyflink_ships():
    import zipfile

    jackson = _pom_property("flink.shaded.jackson.version").split("-")[0]  # 2.20.1-21.0: Jackson 2.20.1
    dist = next((Path(pyflink.__file__).parent / "lib").glob("flink-dist-*.jar"))
    marker = f"com/fasterxml/jackson/core/internal/shaded/fdp/v{jackson.replace('.', '_')}/"
    with zipfile.ZipFile(dist) as jar:
        assert any(marker in name for name in jar.namelist()), f"{dist.name} does not carry Jackson {jackson}"


def test_flink_is_provided_not_bundled():
    root = ET.parse(JVM_MODULE / "pom.xml").getroot()
    flink = [d for d in root.findall("m:dependencies/m:dependency", POM_NS)
             if d.findtext("m:groupId", namespaces=POM_NS) == "org.apache.flink"]
    assert flink, "the module declares no Flink dependency"
    for d in flink:
        assert d.findtext("m:scope", namespaces=POM_NS) == "provided", d.findtext("m:artifactId", namespaces=POM_NS)


def test_the_junit_tests_read_todays_default_detector_config():
    resource = JVM_MODULE / "src" / "test" / "resources" / "detectors-default.json"
    written = json.loads(resource.read_text())
    current = DetectorConfig().model_dump(mode="json")
    assert written == current, (
        f"{resource} is stale: regenerate it with\n  python -c 'import json; from tokenpulse.schemas.detectors import "
        f"DetectorConfig; print(json.dumps(DetectorConfig().model_dump(mode=\"json\"), indent=2))' > {resource}")


def test_every_source_is_in_the_maven_layout():
    stray = [p for p in JVM_MODULE.rglob("*.java")
             if not (p.is_relative_to(UDF_SOURCES) or p.is_relative_to(JVM_MODULE / "src" / "test" / "java"))
             and "target" not in p.relative_to(JVM_MODULE).parts]
    assert stray == [], f"Java files outside src/main/java and src/test/java are not built: {stray}"
    assert Path(UDF_SOURCES / "dev" / "tokenpulse" / "flink" / "PriceLookup.java").exists()
