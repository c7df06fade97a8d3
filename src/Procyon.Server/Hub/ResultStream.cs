using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Procyon.Runtime;

namespace Procyon.Server.Hub;

/// <summary>One hub <c>Results(db, fn?)</c> stream: a reader that falls behind loses the oldest results, not the connection.</summary>
internal sealed class ResultStream(string? function, string? viewer) : IResultListener
{
    /// <summary>Results a slow stream reader may fall behind by; older ones are dropped for it.</summary>
    private const int Buffer = 1024;

    private readonly Channel<CallResult> _results = Channel.CreateBounded<CallResult>(new BoundedChannelOptions(Buffer) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });

    public string? Viewer => viewer;

    public bool Wants(string db, string fn) => function is null || function == fn;

    public void Offer(Delivery delivery) => _results.Writer.TryWrite(delivery.Result);

    /// <param name="viewer">The reader's identity (hex), or null without a token: it receives only the results it may see.</param>
    public static async IAsyncEnumerable<CallResult> ReadAllAsync(ResultListeners listeners, string db, string? fn, string? viewer, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var stream = new ResultStream(fn, viewer);
        listeners.Add(db, stream);
        try
        {
            await foreach (var result in stream._results.Reader.ReadAllAsync(cancellationToken))
            {
                yield return result;
            }
        }
        finally
        {
            listeners.Remove(db, stream);
        }
    }
}
