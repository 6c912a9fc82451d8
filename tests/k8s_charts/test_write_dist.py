"""`python -m k8s_charts.write_dist` writes plain manifests offline and refuses bad input cleanly."""

from __future__ import annotations

import yaml

from k8s_charts import write_dist


def test_writes_ordered_files(tmp_path, capsys):
    (tmp_path / "stale.yaml").write_text("kind: Old\n")
    assert write_dist.main(["--env", "dev", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.yaml"))
    assert names == ["10-vllm.yaml", "20-open-webui.yaml", "30-secrets.yaml"]
    first = list(yaml.safe_load_all((tmp_path / "10-vllm.yaml").read_text()))
    assert first[0]["kind"] == "Namespace"  # namespaces before what lives in them
    rs = next(d for d in first if d["kind"] == "RayService")
    image = rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":src-" + write_dist.serving_source_hash()) and "llama3-inf2-serving" in image
    assert "wrote 3 files" in capsys.readouterr().out


def test_image_option(tmp_path):
    image = "111122223333.dkr.ecr.us-west-2.amazonaws.com/serving:v1.2.3"
    assert write_dist.main(["--env", "prod", "--out", str(tmp_path), "--image", image]) == 0
    assert image in (tmp_path / "10-vllm.yaml").read_text()


def test_bad_input_is_one_line_not_a_traceback(tmp_path, capsys):
    assert write_dist.main(["--env", "staging", "--out", str(tmp_path)]) == 2
    assert "env: unknown environment 'staging'" in capsys.readouterr().err
    assert write_dist.main(["--env", "dev", "--out", str(tmp_path), "--image", "repo/serving:latest"]) == 2
    assert "uses :latest" in capsys.readouterr().err
    assert write_dist.main(["--env", "dev", "--out", str(tmp_path), "--image", "repo/serving"]) == 2
    assert "has no tag" in capsys.readouterr().err
    assert write_dist.main(["--env", "dev", "--out", str(tmp_path), "--ingress-namespace", "Bad_NS"]) == 2
    assert "ingress_namespace" in capsys.readouterr().err


def test_no_secret_values_in_manifests(tmp_path):
    assert write_dist.main(["--env", "dev", "--out", str(tmp_path)]) == 0
    for path in tmp_path.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] != "Secret", "Secrets come from External Secrets, never from the manifests"
