"""texnets.tasks.base.GeneratorTask: what every task shares. A task on its own has no DataModule and
records only its own facts; attached to a trainer it finds its DataModule's methods and records its
summary too; generator configs become plain dicts for the hyper-parameters."""
from dataclasses import asdict

import pytorch_lightning as pl

from texnets.generators.texture_net import TextureNetConfig
from texnets.tasks import NoiseDataModule, TextureTask
from texnets.tasks.base import GeneratorTask


def test_generator_config_accepts_a_mapping_none_or_the_config_itself():
    config, plain = GeneratorTask.generator_config(TextureNetConfig, {"scales": 3})
    assert isinstance(config, TextureNetConfig) and config.scales == 3 and plain == asdict(config)
    assert GeneratorTask.generator_config(TextureNetConfig, None)[0] == TextureNetConfig()
    assert GeneratorTask.generator_config(TextureNetConfig, config)[0] is config


def test_a_task_finds_its_datamodule_only_through_its_trainer():
    task = TextureTask(generator={"scales": 3}, layers=["relu1_1"])
    assert task.datamodule is None and task.data("exemplar_image") is None
    assert task.training_summary() == task.task_summary() == {"loss": "gram", "layers": ["relu1_1"]}
    data = NoiseDataModule("builtin:brick", size=32, batch_size=1, exemplar_size=32, val_samples=0)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(task, data)
    assert task.datamodule is data and task.data("exemplar_image") == data.exemplar_image
    summary = task.training_summary()
    assert summary["layers"] == ["relu1_1"] and summary["exemplar"] == "builtin:brick" and summary["size"] == [32, 32]
