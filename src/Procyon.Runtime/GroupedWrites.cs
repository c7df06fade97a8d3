using System.Collections.Concurrent;

namespace Procyon.Runtime;

/// <summary>
/// Writes that many calls ask for at once go to Postgres together, as group commit does: the
/// first caller's write starts at once; whatever arrives while it runs goes in the next, as one
/// statement (up to <paramref name="maxBatch"/>). One caller alone waits no longer than before;
/// a thousand waking together cost a few statements, not a thousand round trips and commits.
/// A batch that fails is written again item by item, so that one bad item (or one too large for
/// a statement with the rest) fails alone, not every caller grouped with it.
/// </summary>
/// <param name="write">Writes a batch and returns each item's result, in order; an exception fails the whole batch.</param>
internal sealed class GroupedWrites<TItem, TResult>(Func<IReadOnlyList<TItem>, Task<IReadOnlyList<TResult>>> write, int maxBatch = 500)
{
    private readonly ConcurrentQueue<(TItem Item, TaskCompletionSource<TResult> Done)> _queue = new();
    private int _writing;

    public Task<TResult> WriteAsync(TItem item)
    {
        var done = new TaskCompletionSource<TResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Enqueue((item, done));
        if (Interlocked.CompareExchange(ref _writing, 1, 0) == 0)
        {
            _ = Task.Run(WriteQueuedAsync);
        }
        return done.Task;
    }

    /// <summary>Writes batches until the queue is empty; only one runs at a time.</summary>
    private async Task WriteQueuedAsync()
    {
        while (true)
        {
            var batch = new List<(TItem Item, TaskCompletionSource<TResult> Done)>();
            while (batch.Count < maxBatch && _queue.TryDequeue(out var queued))
            {
                batch.Add(queued);
            }
            if (batch.Count == 0)
            {
                // A full fence: an item queued after the last look must see the flag down, or this see the item.
                Interlocked.Exchange(ref _writing, 0);
                if (_queue.IsEmpty || Interlocked.CompareExchange(ref _writing, 1, 0) != 0)
                {
                    return;
                }
                continue;
            }
            if (!await TryWriteAsync(batch) && batch.Count > 1)
            {
                foreach (var one in batch)
                {
                    await TryWriteAsync([one]);
                }
            }
        }
    }

    /// <summary>Writes items and completes them; false (with each failed, unless written again) when the write failed.</summary>
    private async Task<bool> TryWriteAsync(List<(TItem Item, TaskCompletionSource<TResult> Done)> batch)
    {
        try
        {
            var results = await write(batch.ConvertAll(queued => queued.Item));
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Done.TrySetResult(results[i]);
            }
            return true;
        }
        catch (Exception e)
        {
            if (batch.Count == 1)
            {
                batch[0].Done.TrySetException(e);
            }
            return false;
        }
    }
}
