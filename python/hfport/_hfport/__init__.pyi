"""
hfport native core: safetensors reader, tensors and DLPack bridge
"""
from __future__ import annotations
import collections.abc
import hfport.typing
import numpy as np
import typing
import typing_extensions
from . import ops
class Error(RuntimeError):
    pass
class ArgumentError(Error, ValueError):
    pass
class CheckpointClosedError(Error, ValueError):
    pass
class ConfigError(Error):
    pass
class CudaError(Error):
    pass
class DLPackError(Error, BufferError):
    pass
class DTypeConversionError(Error, TypeError):
    pass
class HeaderError(Error):
    pass
class DTypeError(HeaderError):
    pass
class DeviceError(Error):
    pass
class DuplicateKeyError(HeaderError):
    pass
class ShardError(Error):
    pass
class DuplicateTensorError(ShardError):
    pass
class SpecError(Error):
    pass
class ExpressionError(SpecError):
    pass
class FileError(Error, OSError):
    pass
class FileSizeError(HeaderError):
    pass
class HeaderEncodingError(HeaderError):
    pass
class HeaderJsonError(HeaderError):
    pass
class HeaderLengthError(HeaderError):
    pass
class HeaderTooLargeError(HeaderError):
    pass
class LayoutError(HeaderError):
    pass
class LoadError(Error):
    pass
class MetadataError(HeaderError):
    pass
class MissingShardError(ShardError):
    pass
class OffsetsError(HeaderError):
    pass
class SamplingRateError(ArgumentError):
    pass
class ShapeError(HeaderError):
    pass
class ShardIndexError(ShardError):
    pass
class ShardPathError(ShardError):
    pass
class ShardTensorMissingError(ShardError):
    pass
class SliceError(Error, IndexError):
    pass
class TensorEntryError(HeaderError):
    pass
class TensorNotFoundError(Error, KeyError):
    pass
class UnknownFamilyError(ConfigError):
    pass
class UnsupportedFormatError(Error):
    pass
class Tensor:
    """
    A typed, strided view of memory on the host (a mapped checkpoint, an hfport allocation, an imported DLPack tensor) or on a CUDA device. Exports through DLPack without copying: torch.from_dlpack(t), numpy.from_dlpack(t); t.to_device('cuda') / t.to_device('cpu') move it.
    """
    @staticmethod
    def numpy(tensor: Tensor) -> np.ndarray:
        """
        A numpy array sharing the tensor's memory (writable unless the tensor is read-only). BF16
            and the F8 types, which numpy lacks, come out as ml_dtypes arrays (a view, still no copy);
            without ml_dtypes they raise DLPackError. A CUDA tensor raises: move it first
            (tensor.to("cpu")) or use np.asarray(tensor), which copies it.
        """
    def __array__(self, dtype: typing.Any = None, copy: bool | None = None) -> np.ndarray:
        """
        numpy 2's __array__: np.asarray(t) is a view of the tensor's memory (BF16 / F8 as ml_dtypes
            arrays); copy=True always copies; copy=False raises ValueError where a copy is needed (a CUDA
            tensor, another dtype).
        """
    def __bool__(self) -> bool:
        ...
    def __dlpack__(self, *, stream: typing.Any = None, max_version: typing.Any = None, dl_device: typing.Any = None, copy: typing.Any = None) -> typing_extensions.CapsuleType:
        """
        a DLPack capsule: versioned ('dltensor_versioned', DLPack 1.1, read-only where the memory is) when max_version >= (1, 0), else legacy ('dltensor')
        """
    def __dlpack_device__(self) -> tuple[int, int]:
        ...
    def __eq__(self, other: typing.Any) -> typing.Any:
        """
        Element-wise ==, through numpy: a numpy bool array (broadcasting as numpy does).
        """
    def __float__(self) -> float:
        ...
    def __getitem__(self, index: typing.Any) -> Tensor:
        """
        a view: ints select, slices (step > 0) narrow, ... fills
        """
    def __hash__(self) -> int:
        """
        Return hash(self).
        """
    def __int__(self) -> int:
        ...
    def __len__(self) -> int:
        ...
    def __ne__(self, other: typing.Any) -> typing.Any:
        ...
    def __repr__(self) -> str:
        """
        tensor([[...]], dtype=bfloat16) as torch prints it: values (summarised with ... past 1000
            elements), the dtype, and the device when it is not the CPU.
        """
    def clone(self) -> Tensor:
        """
        a contiguous copy in new host memory
        """
    def contiguous(self) -> Tensor:
        """
        a contiguous copy, or this tensor if it already is one
        """
    def get_dtype(self) -> str:
        """
        safetensors' slice API: the dtype name
        """
    def get_shape(self) -> list[typing.Any]:
        """
        safetensors' slice API: the shape as a list
        """
    def is_contiguous(self) -> bool:
        ...
    def item(self) -> typing.Any:
        """
        The one element as a Python int / float / bool; TypeError for any other element count.
        """
    def numel(self) -> int:
        """
        the number of elements
        """
    def size(self, dim: typing.SupportsInt | typing.SupportsIndex | None = None) -> typing.Any:
        """
        the shape as a tuple, or the size of one dimension
        """
    def to(self, *args: typing.Any, dtype: typing.Any = None, device: typing.Any = None) -> Tensor:
        """
        t.to(torch.float16), t.to('bf16'), t.to('cuda'), t.to('cpu', torch.float32), t.to(dtype=..., device=...): a move to the device (a contiguous copy; see to_device), then a cast to F32 / F64 / F16 / BF16 (multithreaded). Returns this tensor when nothing changes. A dtype is a string ('bf16', 'float32', 'F16'), a torch, numpy or ml_dtypes dtype
        """
    def to_device(self, device: str) -> Tensor:
        """
        'cpu', 'cuda' or 'cuda:N': a contiguous copy there, or this tensor if already there. Runs on hfport's stream (the legacy default stream); a copy to the CPU has finished when it returns
        """
    def tolist(self) -> typing.Any:
        """
        The values as nested Python lists of int / float / bool (a number for a 0-d tensor).
        """
    def transpose(self, dim0: typing.SupportsInt | typing.SupportsIndex, dim1: typing.SupportsInt | typing.SupportsIndex) -> Tensor:
        """
        a view with two dimensions swapped
        """
    def view_dtype(self, dtype: typing.Any) -> Tensor:
        """
        the same bytes read as another dtype of the same size
        """
    @property
    def T(self) -> Tensor:
        """
        the transpose of a 2-D tensor (a view); 0- and 1-D tensors are returned as they are
        """
    @property
    def data_ptr(self) -> int:
        ...
    @property
    def device(self) -> str:
        """
        'cpu' or 'cuda:N'
        """
    @property
    def dtype(self) -> str:
        """
        the safetensors dtype name, e.g. 'BF16'
        """
    @property
    def itemsize(self) -> int:
        ...
    @property
    def mT(self) -> Tensor:
        """
        a view with the last two dimensions swapped
        """
    @property
    def nbytes(self) -> int:
        ...
    @property
    def ndim(self) -> int:
        ...
    @property
    def read_only(self) -> bool:
        """
        the memory was lent read-only through DLPack (a numpy array with writeable=False); exports of it are read-only too. Mapped checkpoints are writable copy-on-write
        """
    @property
    def shape(self) -> tuple[typing.Any, ...]:
        ...
    @property
    def strides(self) -> tuple[typing.Any, ...]:
        """
        strides in elements
        """
class Checkpoint:
    """
    A safetensors file or sharded folder, mapped and validated. ck[name] is a zero-copy view; the mapping lives as long as any view or exported tensor does.
    """
    @staticmethod
    def open(path: str, *, mmap: bool = True) -> Checkpoint:
        """
        mmap=False reads every file into memory instead of mapping it, for files that may change while in use (a truncated mapped file kills the reader with SIGBUS)
        """
    def __contains__(self, name: str) -> bool:
        ...
    def __enter__(self) -> Checkpoint:
        ...
    def __exit__(self, *args: typing.Any) -> None:
        """
        closes the checkpoint, as safetensors' safe_open does
        """
    def __getitem__(self, name: str) -> Tensor:
        ...
    def __iter__(self) -> collections.abc.Iterator[typing.Any]:
        ...
    def __len__(self) -> int:
        ...
    def __repr__(self) -> str:
        ...
    def close(self) -> None:
        """
        drop this checkpoint's hold on its files; later access raises CheckpointClosedError. Tensors already taken stay valid: each keeps its file mapped until it is gone
        """
    def get_slice(self, name: str) -> Tensor:
        """
        a lazy view to index like safetensors' get_slice: ck.get_slice(n)[:, 2:4]; only the pages holding the selected elements are ever read
        """
    def get_tensor(self, name: str) -> Tensor:
        """
        same as ck[name]
        """
    def info(self, name: str) -> dict[typing.Any, typing.Any]:
        """
        dtype, shape, byte size, offsets and file of one tensor, reading no data
        """
    def keys(self) -> list[str]:
        """
        tensor names, sorted
        """
    def load_all(self, device: str = 'cpu', names: collections.abc.Sequence[str] | None = None, dtype: typing.Any = None, *, staging_bytes: typing.SupportsInt | typing.SupportsIndex | None = None, staging_buffers: typing.SupportsInt | typing.SupportsIndex | None = None) -> dict[typing.Any, typing.Any]:
        """
        every tensor (or those in `names`) under its own name, as a dict, on `device`: 'cpu' gives the zero-copy views; 'cuda' / 'cuda:N' uploads them all in one pass through pinned staging buffers (staging_buffers x staging_bytes, default 8 x 32 MiB) with copies overlapped on streams, the results sharing one device allocation. dtype casts every floating-point tensor (on the device, after upload, for CUDA). The device is checked before anything is read
        """
    def metadata(self) -> dict[str, str]:
        """
        __metadata__ of a single file; the index's metadata for a sharded checkpoint
        """
    @property
    def closed(self) -> bool:
        ...
    @property
    def config(self) -> typing.Any:
        """
        config.json beside the checkpoint as a dict, or None
        """
    @property
    def is_sharded(self) -> bool:
        ...
    @property
    def path(self) -> str:
        ...
    @property
    def shards(self) -> list[str]:
        """
        paths of the safetensors files (sorted by file name for a sharded checkpoint)
        """
class Model:
    def _clap_audio(self, input_features: hfport.typing.SupportsDLPack, is_longer: hfport.typing.SupportsDLPack, output_hidden_states: bool) -> dict[typing.Any, typing.Any]:
        ...
    def _clap_forward(self, input_ids: hfport.typing.SupportsDLPack, attention_mask: hfport.typing.SupportsDLPack, input_features: hfport.typing.SupportsDLPack, is_longer: hfport.typing.SupportsDLPack, output_hidden_states: bool) -> dict[typing.Any, typing.Any]:
        ...
    def _clap_text(self, input_ids: hfport.typing.SupportsDLPack, attention_mask: hfport.typing.SupportsDLPack, output_hidden_states: bool) -> dict[typing.Any, typing.Any]:
        ...
    def decoder_prompt(self, input_features: hfport.typing.SupportsDLPack, *, language: str | None = None, task: str | None = None) -> Tensor:
        ...
    def forward(self, input_ids: hfport.typing.SupportsDLPack | None = None, attention_mask: hfport.typing.SupportsDLPack | None = None, token_type_ids: hfport.typing.SupportsDLPack | None = None, *, output_hidden_states: bool = False, pixel_values: hfport.typing.SupportsDLPack | None = None, interpolate_pos_encoding: bool = False, bool_masked_pos: hfport.typing.SupportsDLPack | None = None, input_features: hfport.typing.SupportsDLPack | None = None, decoder_input_ids: hfport.typing.SupportsDLPack | None = None) -> dict[typing.Any, typing.Any]:
        ...
    def generate(self, input_ids: hfport.typing.SupportsDLPack, attention_mask: hfport.typing.SupportsDLPack | None = None, *, max_new_tokens: typing.SupportsInt | typing.SupportsIndex, min_new_tokens: typing.SupportsInt | typing.SupportsIndex = 0, eos_token_id: typing.Any = None, pad_token_id: typing.SupportsInt | typing.SupportsIndex | None = None, do_sample: bool = False, temperature: typing.SupportsFloat | typing.SupportsIndex = 1.0, top_k: typing.SupportsInt | typing.SupportsIndex = 50, top_p: typing.SupportsFloat | typing.SupportsIndex = 1.0, seed: typing.Any = None) -> Tensor:
        ...
    def generate_speech(self, input_features: hfport.typing.SupportsDLPack, *, max_new_tokens: typing.SupportsInt | typing.SupportsIndex | None = None, language: str | None = None, task: str | None = None) -> Tensor:
        ...
    @property
    def _is_clap(self) -> bool:
        ...
    @property
    def _is_whisper(self) -> bool:
        ...
    @property
    def config(self) -> typing.Any:
        ...
    @property
    def family(self) -> str:
        ...
    @property
    def main_input_name(self) -> str:
        ...
def _builtin_families() -> list[str]:
    """
    names of the built-in family specs
    """
def _check_spec(text: str, origin: str) -> None:
    """
    validate a spec; SpecError says what is wrong
    """
def _dtype_from_name(name: str) -> str:
    """
    the safetensors name of a dtype given by any name hfport accepts
    """
def _family_spec_json(name: str) -> str:
    """
    a built-in family spec's JSON text
    """
def _load(path: str, spec_text: str | None, spec_origin: str, dtype: str | None, strict: bool, stats: bool, progress: collections.abc.Callable[[int, int], None] | None, device: str = 'cpu', staging_bytes: typing.SupportsInt | typing.SupportsIndex | None = None, staging_buffers: typing.SupportsInt | typing.SupportsIndex | None = None, heads: str = 'auto') -> tuple[dict[typing.Any, typing.Any], tuple[typing.Any, ...]]:
    ...
def _load_model(path: str, spec_text: str | None, spec_origin: str, dtype: str, device: str, strict: bool, heads: str) -> tuple[Model, tuple[typing.Any, ...]]:
    ...
def _map(path: str, spec_text: str | None, spec_origin: str, heads: str = 'auto') -> tuple[typing.Any, ...]:
    ...
def _native_families() -> list[str]:
    ...
def _sampling_probabilities(logits: hfport.typing.SupportsDLPack, temperature: typing.SupportsFloat | typing.SupportsIndex, top_k: typing.SupportsInt | typing.SupportsIndex, top_p: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    """
    softmax of logits [rows, vocab] after generate's temperature, top-k and top-p (F64); for tests against transformers' warpers
    """
def _tensor_from_capsule(capsule: typing_extensions.CapsuleType) -> Tensor:
    """
    consume a 'dltensor' or 'dltensor_versioned' capsule; the tensor shares its memory
    """
def _tensor_from_producer(producer: typing.Any) -> Tensor:
    """
    view a DLPack producer's memory; a CUDA producer syncs to hfport's stream first
    """
def built_with_cublaslt() -> bool:
    """
    cuBLASLt is linked into this build
    """
def built_with_cuda() -> bool:
    """
    CUDA kernels were compiled into this build
    """
def cuda_device_count() -> int:
    """
    CUDA devices visible now (0 without a CUDA build, driver or device)
    """
def tensor_difference(a: Tensor, b: Tensor) -> dict[typing.Any, typing.Any]:
    """
    element-wise comparison in float64: differing count, max abs / rel error, relative L2
    """
def tensor_stats(tensors: collections.abc.Sequence[Tensor], progress: collections.abc.Callable[[int], None] | None = None) -> list[typing.Any]:
    """
    mean / std / min / max over finite values and NaN / Inf counts, per tensor, on all threads; progress(done) is called as tensors finish
    """
def write_safetensors(path: str, tensors: collections.abc.Sequence[tuple[str, Tensor]], metadata: collections.abc.Mapping[str, str] = {}) -> None:
    """
    write (name, hfport.Tensor) pairs as a safetensors file (atomically: a temporary file renamed into place)
    """
__version__: str = '0.1.0'
