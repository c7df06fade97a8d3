namespace Procyon.Storage;

/// <summary>A published module as the catalog keeps it.</summary>
/// <param name="Name">The database name it is published under.</param>
/// <param name="Wasm">The bytes the publisher sent.</param>
/// <param name="Prepared">The bytes the server runs (after the Asyncify rewrite).</param>
/// <param name="Sha256">Hex SHA-256 of <paramref name="Wasm"/>.</param>
/// <param name="Owner">The identity (hex) that owns the database; null for one published before owners existed.</param>
public sealed record StoredModule(string Name, byte[] Wasm, byte[] Prepared, string Sha256, DateTimeOffset UpdatedAt, string? Owner);
