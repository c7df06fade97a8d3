namespace Procyon.Storage;

/// <summary>
/// The server already does as much of something as it allows (SQL sessions, module preparations);
/// the message names the limit. Nothing was done: the caller may try again shortly (503 with <c>Retry-After</c>).
/// </summary>
public sealed class OverloadedException(string message) : Exception(message);
