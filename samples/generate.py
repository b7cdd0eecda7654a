"""Regenerate the committed sample shoot (developer tool, not run by make).

    .venv/bin/python samples/generate.py

astronaut.jpg: scikit-image's astronaut photo (Eileen Collins, NASA, public
domain) with EXIF artist, copyright and a GPS position, so a render shows
GPS removed and credits kept. landscape.jpg: a generated 3:2 landscape.
logo.png: a transparent badge. clip.mp4: a 4 s 720p pan across the
landscape with a short narration (espeak-ng, which must be installed) over
a soft two-note chord, so its variants get subtitles from speech.
shoot.yaml and effects.py are written by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from skimage import data

HERE = Path(__file__).resolve().parent / "shoot"


def astronaut() -> None:
    image = Image.fromarray(data.astronaut())
    exif = image.getexif()
    exif[0x013B] = "NASA"
    exif[0x8298] = "Public domain (NASA)"
    exif[0x010E] = "Astronaut Eileen Collins"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (28.0, 31.0, 26.0), 3: "W", 4: (80.0, 39.0, 3.0)})
    image.save(HERE / "astronaut.jpg", quality=92, exif=exif.tobytes())


def fractal(shape: tuple[int, int], seed: int, power: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    amp = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(shape)) ** (power / 2 * 2 / 2)
    spectrum = amp * np.exp(2j * np.pi * rng.random(shape))
    field = np.real(np.fft.ifft2(spectrum))
    return (field - field.mean()) / field.std()


def landscape(width: int = 2400, height: int = 1600) -> None:
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    sky = np.stack([110 + 120 * y, 160 + 70 * y, 230 - 20 * y], -1) * np.ones((1, width, 1))
    img = sky.copy()
    rng = np.random.default_rng(7)
    for layer, (base, colour) in enumerate([(0.45, (95, 105, 130)), (0.55, (60, 80, 70)),
                                             (0.68, (40, 60, 35))]):
        ridge = np.cumsum(rng.normal(0, 1, width))
        ridge = (ridge - ridge.min()) / (np.ptp(ridge) + 1e-9)
        line = base - 0.15 * ridge + 0.03 * np.sin(x[0] * (9 + layer * 5))
        mask = y > line[None, :]
        texture = fractal((height, width), seed=layer)[..., None] * 12
        img = np.where(mask[..., None], np.array(colour) + texture, img)
    sun = np.exp(-((x - 0.72) ** 2 + ((y - 0.22) * height / width) ** 2) / 0.0008)[..., None]
    img = img + sun * np.array([120, 100, 40])
    grain = fractal((height, width), seed=11)[..., None] * 4
    out = np.clip(img + grain, 0, 255).astype(np.uint8)
    Image.fromarray(out).filter(ImageFilter.SMOOTH).save(HERE / "landscape.jpg", quality=90)


def logo(size: int = 1200) -> None:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 60, size - 60, size - 60), fill=(230, 70, 50, 255))
    draw.ellipse((220, 220, size - 220, size - 220), fill=(255, 255, 255, 235))
    draw.regular_polygon((size / 2, size / 2, 260), 5, rotation=90, fill=(40, 40, 60, 255))
    try:
        font = ImageFont.load_default(size=90)
        draw.text((size / 2, size - 140), "repurpose", fill=(255, 255, 255, 255), font=font,
                  anchor="mm")
    except (OSError, TypeError):
        pass
    image.save(HERE / "logo.png", optimize=True)


NARRATION = "It is launch day. The crew is ready to fly."


def clip(seconds: int = 4) -> None:
    import subprocess
    import tempfile

    import imageio_ffmpeg

    voice = Path(tempfile.mkdtemp()) / "voice.wav"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(voice), NARRATION], check=True)
    pan = f"crop=1280:720:x='(iw-1280)*t/{seconds}':y=380,format=yuv420p"
    subprocess.run([
        imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
        "-loop", "1", "-framerate", "30", "-t", str(seconds), "-i", str(HERE / "landscape.jpg"),
        "-f", "lavfi", "-i", f"sine=f=220:d={seconds}", "-f", "lavfi", "-i",
        f"sine=f=330:d={seconds}", "-i", str(voice),
        "-filter_complex", f"[0:v]{pan}[v];[1:a][2:a]amix=inputs=2,volume=0.15[bed];"
                           "[3:a]adelay=500:all=1,aresample=44100[talk];"
                           "[bed][talk]amix=inputs=2:duration=first:normalize=0,"
                           f"afade=t=in:d=0.3,afade=t=out:st={seconds - 0.5}:d=0.5[a]",
        "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-crf", "30", "-preset", "slow",
        "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(HERE / "clip.mp4"),
    ], check=True)


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    astronaut()
    landscape()
    logo()
    clip()
