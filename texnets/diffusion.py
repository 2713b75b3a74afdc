"""Style-loss-guided diffusion: steer a pretrained diffusion model with the VGG style losses of texnets.

At every denoising step the loop here
  1. predicts the noise ε̂ with the model's UNet (with classifier-free text guidance when the model
     is text-conditioned),
  2. forms the predicted clean sample x̂0 = (x_t - sqrt(1-ᾱ_t) ε̂) / sqrt(ᾱ_t) and, for a latent model,
     decodes it to pixels with the VAE,
  3. computes the style loss L of x̂0 against the style image (any loss of ``texnets.losses``),
  4. takes the gradient g = ∂L/∂x_t with respect to the sample (pixel-space models) or latent,
  5. shifts the noise prediction: ε̂' = ε̂ + s · sqrt(1-ᾱ_t) · ĝ,
  6. lets the scheduler step from x_t with ε̂'.

The choices, and why:
  * sqrt(1-ᾱ_t) is the factor of classifier guidance (Dhariwal & Nichol 2021, "Diffusion Models Beat
    GANs on Image Synthesis", Algorithm 2 / eq. 14, where ε̂' = ε̂ - sqrt(1-ᾱ_t) ∇ log p(y|x_t); a loss
    plays -log p, hence the plus sign). It makes the push strong while the sample is mostly noise and
    fade out as the image settles.
  * ĝ is g divided by its root mean square (default, ``normalize_gradient=True``), so that s is in units
    of the noise prediction itself (ε̂ has unit RMS): s = 0.1 moves ε̂ by a tenth of its own size times
    sqrt(1-ᾱ_t), whatever the loss family, its layer weights or the image size. The raw gradient
    (``normalize_gradient=False``) is the textbook form, but its size spans orders of magnitude between
    the Gram, mean/variance, MMD and sliced-Wasserstein losses, so one scale cannot serve them all.
  * By default ε̂ is held constant when differentiating (``through_unet=False``): ∂x̂0/∂x_t = 1/sqrt(ᾱ_t),
    so the gradient costs one VAE-decoder and VGG backward pass and no UNet backward pass. With
    ``through_unet=True`` the gradient also flows through the UNet's prediction, as in classifier
    guidance proper and diffusers' CLIP-guided Stable Diffusion community pipeline: slower and heavier
    in memory, sometimes more faithful.
  * The style loss sees x̂0 clamped to [0, 1], the image a user would be shown.
  * The sampler is DDIM (Song et al. 2021): x̂0 needs ᾱ_t, which DDIM uses directly, and its
    deterministic steps (η = 0) make the same seed give the same image. Pipelines are loaded with their
    scheduler converted to DDIM (as diffusers' own DDIMPipeline does), for the guided and unguided runs
    alike.
  * Scale 0 runs no autograd and adds nothing, so it reproduces the unguided pipeline bit for bit.

Supported pipelines: pixel-space ``UNet2DModel`` pipelines (DDPMPipeline, DDIMPipeline, e.g.
``google/ddpm-cifar10-32``) and latent, text-conditioned ``StableDiffusionPipeline`` checkpoints
(e.g. ``stable-diffusion-v1-5/stable-diffusion-v1-5``, ``stabilityai/stable-diffusion-2-1-base``); the
prompt is encoded by the pipeline's own ``encode_prompt``.

diffusers is an optional extra (``pip install ".[diffusion]"``) and is imported only when a function
here needs it, so ``import texnets`` never does.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from texnets.errors import TexnetsError
from texnets.images import to_uint8
from texnets.losses import PerceptualCriterion

INSTALL_HINT = 'style-guided diffusion needs diffusers: install it with pip install ".[diffusion]"'


def require_diffusers():
    """The diffusers module, or a one-line TexnetsError saying how to install it."""
    try:
        import diffusers
    except ImportError:
        raise TexnetsError(INSTALL_HINT) from None
    return diffusers


# --------------------------------------------------------------------------------------------------
# Results

@dataclass
class StepRecord:
    """One denoising step as the seed reports tabulate it: the x̂0 the guidance saw, and its style loss."""
    index: int
    timestep: int
    style_loss: float
    image: torch.Tensor | None = None     # x̂0 as (3, H, W) uint8 on the CPU, when recorded


@dataclass
class DiffusionResult:
    image: torch.Tensor                   # (1, 3, H, W) float in [0, 1], on the CPU
    style_loss: float | None              # of the final image against the style image
    seconds: float
    timesteps: list[int]
    steps: list[StepRecord] = field(default_factory=list)
    nsfw: bool = False                    # the pipeline's safety checker blacked the image out


# --------------------------------------------------------------------------------------------------
# The guidance

def model_output_shift(prediction_type: str, alpha_bar: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """A shift δ of the noise ε, expressed in what the model outputs (ε, v or x0), with x_t held fixed."""
    if prediction_type == "epsilon":
        return shift
    if prediction_type == "v_prediction":   # v = sqrt(ᾱ) ε - sqrt(1-ᾱ) x0 with x0 = (x - sqrt(1-ᾱ) ε)/sqrt(ᾱ)
        return shift / alpha_bar.sqrt()
    if prediction_type == "sample":         # x0 = (x - sqrt(1-ᾱ) ε) / sqrt(ᾱ)
        return -shift * ((1 - alpha_bar) / alpha_bar).sqrt()
    raise TexnetsError(f"unsupported prediction type {prediction_type!r}; expected epsilon, v_prediction or sample")


def predicted_original(prediction_type: str, model_output: torch.Tensor, sample: torch.Tensor,
                       alpha_bar: torch.Tensor) -> torch.Tensor:
    """x̂0 from the model output at a step with cumulative ᾱ (the formulas of diffusers' DDIM step)."""
    if prediction_type == "epsilon":
        return (sample - (1 - alpha_bar).sqrt() * model_output) / alpha_bar.sqrt()
    if prediction_type == "v_prediction":
        return alpha_bar.sqrt() * sample - (1 - alpha_bar).sqrt() * model_output
    if prediction_type == "sample":
        return model_output
    raise TexnetsError(f"unsupported prediction type {prediction_type!r}; expected epsilon, v_prediction or sample")


@dataclass
class StyleGuidance:
    """How hard and how to steer: see the module docstring for each choice."""
    criterion: PerceptualCriterion | None  # style loss against the style image; None: unguided, no losses
    scale: float = 0.0
    normalize_gradient: bool = True
    through_unet: bool = False

    def loss(self, pixels: torch.Tensor) -> torch.Tensor:
        # VGG runs in float32 whatever the diffusion model's dtype; the cast is differentiable.
        total, _ = self.criterion(pixels.float().clamp(0, 1))
        return total

    def noise_shift(self, gradient: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
        """s · sqrt(1-ᾱ_t) · ĝ: the shift of ε̂ (step 5)."""
        gradient = gradient.float()
        if self.normalize_gradient:
            rms = gradient.pow(2).mean(dim=tuple(range(1, gradient.ndim)), keepdim=True).sqrt()
            gradient = gradient / rms.clamp_min(1e-12)  # an all-zero gradient (all pixels clamped) stays zero
        return self.scale * (1 - alpha_bar.float()).sqrt() * gradient


@dataclass
class Denoiser:
    """What the loop needs from a pipeline.

    ``unet`` predicts the noise; ``vae`` (None for pixel-space models) maps latents to pixels;
    ``prompt_embeds`` conditions a text-conditioned UNet, with the unconditional (negative) embeddings
    first when ``text_guidance > 1`` (the pipeline's classifier-free guidance, as diffusers batches it).
    """
    unet: torch.nn.Module
    scheduler: object
    vae: torch.nn.Module | None = None
    prompt_embeds: torch.Tensor | None = None
    text_guidance: float = 1.0

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def latent(self) -> bool:
        return self.vae is not None

    @property
    def scale_factor(self) -> int:
        """Pixels per latent cell (diffusers' ``vae_scale_factor``); 1 in pixel space."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1) if self.latent else 1

    @property
    def size_multiple(self) -> int:
        """Output sides must be multiples of this: the VAE's factor (latent; its UNet pads itself), or
        the pixel UNet's downsampling, whose skip connections need exact halvings."""
        if self.latent:
            return self.scale_factor
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    def native_size(self) -> tuple[int, int]:
        """The (H, W) in pixels the model was trained at."""
        native = self.unet.config.sample_size
        native = (native, native) if isinstance(native, int) else tuple(native)
        return tuple(side * self.scale_factor for side in native)

    @property
    def uses_text_guidance(self) -> bool:
        return self.prompt_embeds is not None and self.text_guidance > 1

    def noise(self, sample: torch.Tensor, timestep) -> torch.Tensor:
        """The model output at ``timestep``; for text models, combined by classifier-free guidance."""
        if self.prompt_embeds is None:
            return self.unet(sample, timestep).sample
        model_input = torch.cat([sample] * 2) if self.uses_text_guidance else sample
        model_input = self.scheduler.scale_model_input(model_input, timestep)
        output = self.unet(model_input, timestep, encoder_hidden_states=self.prompt_embeds, return_dict=False)[0]
        if self.uses_text_guidance:
            unconditional, conditional = output.chunk(2)
            output = unconditional + self.text_guidance * (conditional - unconditional)
        return output

    def to_pixels(self, sample: torch.Tensor, generator=None) -> torch.Tensor:
        """Model space -> pixels in [-1, 1] (not clamped: callers clamp, the pipeline way)."""
        if not self.latent:
            return sample
        config = self.vae.config
        latents = sample / config.scaling_factor
        if getattr(config, "shift_factor", None) is not None:
            latents = latents + config.shift_factor
        return self.vae.decode(latents, return_dict=False, generator=generator)[0]


def _step_kwargs(scheduler, eta: float, generator) -> dict:
    """eta and generator for schedulers whose step takes them (diffusers' prepare_extra_step_kwargs)."""
    parameters = inspect.signature(scheduler.step).parameters
    return {name: value for name, value in (("eta", eta), ("generator", generator)) if name in parameters}


def check_size(denoiser: Denoiser, size: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(side) for side in size)
    multiple = denoiser.size_multiple
    if height < multiple or width < multiple or height % multiple or width % multiple:
        raise TexnetsError(f"this model needs --size multiples of {multiple}, not {height} {width}")
    return height, width


def output_size(pipe, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The (H, W) a run of ``pipe`` produces: ``size`` if the model accepts it, else its native size."""
    denoiser = Denoiser(pipe.unet, pipe.scheduler, getattr(pipe, "vae", None))
    return check_size(denoiser, size) if size else denoiser.native_size()


def initial_noise(denoiser: Denoiser, size: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
    """x_T drawn exactly as DDPMPipeline / DDIMPipeline / StableDiffusionPipeline draw it."""
    from diffusers.utils.torch_utils import randn_tensor

    height, width = check_size(denoiser, size)
    factor = denoiser.scale_factor
    channels = denoiser.unet.config.in_channels
    dtype = denoiser.prompt_embeds.dtype if denoiser.prompt_embeds is not None else denoiser.dtype
    noise = randn_tensor((1, channels, height // factor, width // factor), generator=generator,
                         device=denoiser.device, dtype=dtype)
    if denoiser.latent:
        noise = noise * denoiser.scheduler.init_noise_sigma  # the Stable Diffusion pipeline's prepare_latents
    return noise


def guided_sample(denoiser: Denoiser, guidance: StyleGuidance, steps: int, size: tuple[int, int],
                  generator: torch.Generator | None = None, eta: float = 0.0, record: bool = False,
                  keep_images: bool = False, progress: bool | str = False) -> tuple[torch.Tensor, list[StepRecord]]:
    """Run the denoising loop with style guidance; return the final sample (model space) and the steps.

    ``record`` computes the style loss of every step's x̂0 (also at scale 0, without changing the
    trajectory); ``keep_images`` keeps each x̂0 as a uint8 image as well.
    """
    scheduler = denoiser.scheduler
    if not hasattr(scheduler, "alphas_cumprod") or getattr(scheduler, "init_noise_sigma", 1.0) != 1.0:
        raise TexnetsError(f"the guidance needs a scheduler with cumulative alphas (DDIM, DDPM, PNDM), "
                           f"not {type(scheduler).__name__}")
    if steps < 1:
        raise TexnetsError("--steps must be at least 1")
    if guidance.scale < 0:
        raise TexnetsError("--guidance-scale must be 0 or more (0: unguided)")
    guided = guidance.scale != 0
    if (guided or record) and guidance.criterion is None:
        raise TexnetsError("style guidance and loss records need a style criterion")
    prediction_type = scheduler.config.prediction_type
    sample = initial_noise(denoiser, size, generator)
    scheduler.set_timesteps(steps, device=denoiser.device)
    step_kwargs = _step_kwargs(scheduler, eta, generator)
    records: list[StepRecord] = []
    bar = tqdm(scheduler.timesteps, desc=progress if isinstance(progress, str) else "denoising",
               disable=not progress, leave=False, dynamic_ncols=True)
    for index, timestep in enumerate(bar):
        # x_t is a leaf that needs a gradient only when guiding; at scale 0 nothing below builds a graph.
        current = sample.detach().requires_grad_(guided)
        with torch.set_grad_enabled(guided and guidance.through_unet):
            model_output = denoiser.noise(current, timestep)                               # step 1
        if guided or record:
            alpha_bar = scheduler.alphas_cumprod[int(timestep)].to(device=current.device, dtype=current.dtype)
            with torch.set_grad_enabled(guided):
                x0 = predicted_original(prediction_type, model_output, current, alpha_bar)  # step 2
                pixels = denoiser.to_pixels(x0) / 2 + 0.5
                loss = guidance.loss(pixels)                                               # step 3
            if not torch.isfinite(loss):
                raise TexnetsError(f"the style loss is not finite at step {index} (timestep {int(timestep)}); "
                                   f"try a smaller --guidance-scale, or float32 (--dtype fp32)")
            if record:
                image = to_uint8(pixels.detach()[:1]) if keep_images else None
                records.append(StepRecord(index, int(timestep), float(loss.detach()), image))
            if guided:
                (gradient,) = torch.autograd.grad(loss, current)                           # step 4
                shift = guidance.noise_shift(gradient, alpha_bar)                          # step 5
                model_output = model_output.detach() + model_output_shift(
                    prediction_type, alpha_bar.float(), shift).to(model_output.dtype)
        with torch.no_grad():
            sample = scheduler.step(model_output.detach(), timestep, sample, **step_kwargs,  # step 6
                                    return_dict=False)[0]
    return sample.detach(), records


# --------------------------------------------------------------------------------------------------
# Pipelines

# A Hugging Face hub id: ``name`` or ``owner/name`` of letters, digits, '-', '_' and '.'.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def looks_like_hub_id(model: str) -> bool:
    """Whether a name that is not a local folder could be a hub id (anything else is a missing folder)."""
    return bool(HUB_ID.fullmatch(model))


def _in_hub_cache(model: str) -> bool:
    """Whether a hub id's pipeline index is already in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(model, "model_index.json"), str)


@contextlib.contextmanager
def _quiet_hub_logs(diffusers):
    """diffusers and huggingface_hub log "Couldn't connect to the Hub" and "Will try to load from local
    cache" on every offline load; the one error line (or the loaded model) says what matters."""
    previous = diffusers.utils.logging.get_verbosity()
    hub_logger = logging.getLogger("huggingface_hub")
    hub_level = hub_logger.level
    diffusers.utils.logging.set_verbosity_error()
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        diffusers.utils.logging.set_verbosity(previous)
        hub_logger.setLevel(hub_level)


def _first_sentence(exc: BaseException, limit: int = 160) -> str:
    """An exception's first sentence, cut at a word and with no bracket left open, for a one-line error."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.split(". ")[0].rstrip(".")
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    for opening, closing in ("()", "[]", "{}"):
        if text.count(opening) > text.count(closing):
            text = text[:text.rindex(opening)].rstrip() or text
    return f"{type(exc).__name__}: {text}"


def dtype_keyword(diffusers) -> str:
    """from_pretrained's precision keyword: ``dtype`` in the tested 0.42, ``torch_dtype`` (now deprecated) before.

    The dtype is given at load time rather than by a cast afterwards, so that modules a model keeps in
    float32 stay there (diffusers warns about a later cast for that reason).
    """
    from packaging.version import Version

    return "dtype" if Version(diffusers.__version__).release >= (0, 42) else "torch_dtype"


def load_pipeline(model: str, device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
                  quiet: bool = False):
    """Load a diffusers pipeline from a hub id or a local folder, on ``device``, with a DDIM scheduler.

    A folder that does not exist, weights that are missing offline, or a folder that is not a
    diffusers pipeline each give one TexnetsError line. ``quiet`` turns diffusers' progress bars off
    (a process-wide diffusers setting).
    """
    diffusers = require_diffusers()
    if quiet:
        diffusers.utils.logging.disable_progress_bar()
    local = Path(model).expanduser()
    if not local.exists() and not looks_like_hub_id(model):
        raise TexnetsError(f"diffusion model folder not found: {model}")
    source = str(local) if local.exists() else model
    if local.is_file():
        raise TexnetsError(f"expected a diffusers pipeline folder (with model_index.json) or a hub id, got a file: "
                           f"{model}")
    cached = local.exists() or _in_hub_cache(model)
    try:
        with _quiet_hub_logs(diffusers):
            pipe = diffusers.DiffusionPipeline.from_pretrained(source, **{dtype_keyword(diffusers): dtype})
    except ImportError as exc:  # e.g. Stable Diffusion without transformers
        raise TexnetsError(f"cannot load {model}: {str(exc).strip().splitlines()[0]}; {INSTALL_HINT}") from None
    except Exception as exc:
        # diffusers and huggingface_hub raise OSError, ValueError, HTTP, connection and safetensors errors
        # for a missing, gated, partial or corrupt model: all of them are about the input, not a bug here.
        if not cached:
            raise TexnetsError(f"cannot load the diffusion model {model}: it is not in the Hugging Face cache and "
                               f"downloading it failed ({type(exc).__name__}); offline, download it elsewhere first "
                               f"(hf download {model}) or pass a local pipeline folder") from None
        raise TexnetsError(f"cannot load the diffusion model {model}: {_first_sentence(exc)}; is the folder a complete "
                           f"diffusers pipeline (model_index.json and its components)?") from None
    check_supported(pipe, model)
    # DDIM: the guidance needs ᾱ_t, and η = 0 makes runs reproducible (see the module docstring).
    pipe.scheduler = diffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def is_text_conditioned(pipe) -> bool:
    return getattr(pipe, "vae", None) is not None and hasattr(pipe, "encode_prompt")


def check_supported(pipe, model: str = "") -> None:
    diffusers = require_diffusers()
    unet = getattr(pipe, "unet", None)
    name = type(pipe).__name__
    if isinstance(unet, diffusers.UNet2DModel) and getattr(pipe, "vae", None) is None:
        return
    if isinstance(unet, diffusers.UNet2DConditionModel) and is_text_conditioned(pipe) \
            and unet.config.addition_embed_type is None and unet.config.time_cond_proj_dim is None:
        return
    raise TexnetsError(f"{model or 'this model'} is a {name}; style guidance supports pixel-space UNet2DModel "
                       f"pipelines (DDPM, DDIM) and StableDiffusionPipeline models")


def make_denoiser(pipe, prompt: str = "", negative_prompt: str | None = None,
                  text_guidance: float = 7.5) -> Denoiser:
    """The pipeline's components; a text-conditioned pipeline encodes the prompt with its own encode_prompt."""
    check_supported(pipe)
    if not is_text_conditioned(pipe):
        return Denoiser(pipe.unet, pipe.scheduler)
    use_text_guidance = text_guidance > 1  # StableDiffusionPipeline.do_classifier_free_guidance
    with torch.no_grad():
        prompt_embeds, negative_embeds = pipe.encode_prompt(prompt, pipe._execution_device, 1, use_text_guidance,
                                                            negative_prompt)
    if use_text_guidance:
        prompt_embeds = torch.cat([negative_embeds, prompt_embeds])
    return Denoiser(pipe.unet, pipe.scheduler, pipe.vae, prompt_embeds, text_guidance)


def finish(denoiser: Denoiser, sample: torch.Tensor, generator=None,
           safety: Callable | None = None) -> tuple[torch.Tensor, bool]:
    """Final sample -> (1, 3, H, W) in [0, 1] on the CPU, as the pipelines post-process it, and whether a
    safety checker (``pipe.run_safety_checker``) blacked it out."""
    with torch.no_grad():
        image = denoiser.to_pixels(sample, generator)
        nsfw = False
        if safety is not None:
            image, flags = safety(image, denoiser.device, denoiser.prompt_embeds.dtype)
            nsfw = bool(flags and flags[0])
        if not nsfw:  # the pipeline leaves a blacked-out image un-denormalised (black stays black)
            image = (image / 2 + 0.5).clamp(0, 1)
    return image.float().cpu(), nsfw


def generate(pipe, guidance: StyleGuidance, steps: int = 50, seed: int = 0, size: tuple[int, int] | None = None,
             prompt: str = "", negative_prompt: str | None = None, text_guidance: float = 7.5, eta: float = 0.0,
             record: bool = False, keep_images: bool = False, progress: bool | str = False) -> DiffusionResult:
    """One image from ``pipe`` (loaded by ``load_pipeline``), steered by ``guidance``.

    ``size`` (H, W) defaults to the model's native size. The noise comes from a CPU generator seeded
    with ``seed``, so a seed means the same start on every device. ``text_guidance`` is the pipeline's
    own classifier-free guidance scale (text-conditioned models only); the prompt is ignored, with a
    warning, by unconditional models.
    """
    if not is_text_conditioned(pipe) and (prompt or negative_prompt):
        warnings.warn(f"{type(pipe).__name__} is unconditional: the prompt is ignored", stacklevel=2)
    denoiser = make_denoiser(pipe, prompt, negative_prompt, text_guidance)
    size = output_size(pipe, size)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    sample, records = guided_sample(denoiser, guidance, steps, size, generator, eta, record, keep_images, progress)
    safety = pipe.run_safety_checker if denoiser.latent and hasattr(pipe, "run_safety_checker") else None
    image, nsfw = finish(denoiser, sample, generator, safety)
    if nsfw:
        warnings.warn("the pipeline's safety checker flagged the image and blacked it out", stacklevel=2)
    seconds = time.perf_counter() - start
    return DiffusionResult(image=image, style_loss=style_loss(guidance.criterion, image), seconds=seconds,
                           timesteps=[int(t) for t in denoiser.scheduler.timesteps], steps=records, nsfw=nsfw)


def style_loss(criterion: PerceptualCriterion | None, image: torch.Tensor) -> float | None:
    """The style loss of a finished image (1, 3, H, W) in [0, 1] against the criterion's style image."""
    if criterion is None:
        return None
    device = next(criterion.encoder.buffers()).device
    with torch.no_grad():
        total, _ = criterion(image.to(device).float())
    return float(total)


__all__ = [
    "DiffusionResult", "Denoiser", "INSTALL_HINT", "StepRecord", "StyleGuidance", "check_supported", "finish",
    "generate", "guided_sample", "initial_noise", "load_pipeline", "make_denoiser", "model_output_shift",
    "output_size", "predicted_original",
    "require_diffusers", "style_loss",
]
