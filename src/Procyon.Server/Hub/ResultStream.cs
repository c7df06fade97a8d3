using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Procyon.Runtime;

namespace Procyon.Server.Hub;

/// <summary>
/// One hub <c>Results(db, fn?)</c> stream: a reader that falls behind loses the oldest results,
/// not the connection. It keeps at most 1,024 results and, beyond the newest,
/// <see cref="HubOptions.MaxPendingBytesPerConnection"/> of them.
/// </summary>
internal sealed class ResultStream : IResultListener
{
    /// <summary>Results a slow stream reader may fall behind by; older ones are dropped for it.</summary>
    private const int Buffer = 1024;

    private readonly string? _function;
    private readonly long _maxBytes;
    private readonly Channel<Delivery> _results;

    /// <summary>Bytes of the results waiting in <see cref="_results"/>.</summary>
    private long _bytes;

    private ResultStream(string? function, string? viewer, long maxBytes)
    {
        _function = function;
        _maxBytes = maxBytes;
        Viewer = viewer;
        _results = Channel.CreateBounded<Delivery>(new BoundedChannelOptions(Buffer) { FullMode = BoundedChannelFullMode.DropOldest }, Drop);
    }

    public string? Viewer { get; }

    public bool Wants(string db, string fn) => _function is null || _function == fn;

    public void Offer(Delivery delivery)
    {
        while (Interlocked.Read(ref _bytes) + delivery.Size > _maxBytes && _results.Reader.TryRead(out var oldest))
        {
            Drop(oldest);
        }
        Interlocked.Add(ref _bytes, delivery.Size);
        _results.Writer.TryWrite(delivery);
    }

    /// <param name="viewer">The reader's identity (hex), or null without a token: it receives only the results it may see.</param>
    public static async IAsyncEnumerable<CallResult> ReadAllAsync(ResultListeners listeners, string db, string? fn, string? viewer, long maxBytes, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var stream = new ResultStream(fn, viewer, maxBytes);
        listeners.Add(db, stream);
        try
        {
            await foreach (var delivery in stream._results.Reader.ReadAllAsync(cancellationToken))
            {
                stream.Forget(delivery);
                Telemetry.HubTelemetry.ResultSent(delivery.Result);
                yield return delivery.Result;
            }
        }
        finally
        {
            listeners.Remove(db, stream);
        }
    }

    private void Forget(Delivery delivery) => Interlocked.Add(ref _bytes, -delivery.Size);

    /// <summary>An older result the reader will not get: it fell behind.</summary>
    private void Drop(Delivery delivery)
    {
        Forget(delivery);
        Telemetry.HubTelemetry.ResultDropped(delivery.Result, Telemetry.HubTelemetry.DropReason.Stream);
    }
}
