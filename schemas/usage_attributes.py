"""tokenpulse's own span attributes for usage that OTel GenAI semconv has no name for yet.

Kept beside schemas/semconv.py (the official names) so senders, the SDK and the collector
share one spelling. Counts are non-negative whole numbers, like semconv's token counts:

    tokenpulse.usage.input_audio_tokens   audio tokens among gen_ai.usage.input_tokens that were
                                          not read from / written to the cache (billed at the
                                          model's audio input rate instead of the text rate)
    tokenpulse.usage.output_audio_tokens  audio tokens among gen_ai.usage.output_tokens
                                          (billed at the audio output rate instead of the text rate)
    tokenpulse.usage.input_images         images sent to the model (for providers pricing per image)
    tokenpulse.usage.output_images        images generated (image generation priced per image)
    tokenpulse.usage.input_audio_seconds  seconds of input audio billed per time (transcription)

    tokenpulse.cache.semantic_hit         true: the app answered from its own semantic cache and
                                          made no provider call; the span's usage and model are
                                          what the call *would* have used (its counterfactual)
"""

from __future__ import annotations

INPUT_AUDIO_TOKENS = "tokenpulse.usage.input_audio_tokens"
OUTPUT_AUDIO_TOKENS = "tokenpulse.usage.output_audio_tokens"
INPUT_IMAGES = "tokenpulse.usage.input_images"
OUTPUT_IMAGES = "tokenpulse.usage.output_images"
INPUT_AUDIO_SECONDS = "tokenpulse.usage.input_audio_seconds"

# attribute -> TokenSpan field
USAGE_FIELDS = {
    INPUT_AUDIO_TOKENS: "input_audio_tokens",
    OUTPUT_AUDIO_TOKENS: "output_audio_tokens",
    INPUT_IMAGES: "input_images",
    OUTPUT_IMAGES: "output_images",
    INPUT_AUDIO_SECONDS: "input_audio_seconds",
}

SEMANTIC_CACHE_HIT = "tokenpulse.cache.semantic_hit"
