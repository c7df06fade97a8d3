using System.Buffers;

namespace Procyon.Storage.Tables;

/// <summary>
/// Bytes kept in chunks as they are written, so that growing never copies them into an array twice
/// the size (which would hold a large answer two or three times over for a moment).
/// </summary>
public sealed class ChunkedBuffer : IBufferWriter<byte>
{
    private const int ChunkBytes = 64 << 10;

    private readonly List<ReadOnlyMemory<byte>> _full = [];
    private byte[] _current = [];
    private int _used;

    /// <summary>The bytes written.</summary>
    public long Length { get; private set; }

    public void Advance(int count)
    {
        _used += count;
        Length += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        if (_current.Length - _used < Math.Max(sizeHint, 1))
        {
            if (_used > 0)
            {
                _full.Add(_current.AsMemory(0, _used));
            }
            _current = new byte[Math.Max(sizeHint, ChunkBytes)];
            _used = 0;
        }
        return _current.AsMemory(_used);
    }

    public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public async Task CopyToAsync(Stream destination, CancellationToken cancellationToken)
    {
        foreach (var chunk in _full)
        {
            await destination.WriteAsync(chunk, cancellationToken);
        }
        await destination.WriteAsync(_current.AsMemory(0, _used), cancellationToken);
    }
}
