namespace Procyon.Storage;

/// <summary>A published module as the catalog keeps it.</summary>
/// <param name="Name">The database name it is published under.</param>
/// <param name="Wasm">The bytes the publisher sent.</param>
/// <param name="Prepared">The bytes the server runs (after the Asyncify rewrite).</param>
/// <param name="Optimized">Whether <paramref name="Prepared"/> is the optimized rewrite, or the quick one a publish serves until its optimization is done.</param>
/// <param name="Sha256">Hex SHA-256 of <paramref name="Wasm"/>.</param>
/// <param name="Owner">The identity (hex) that owns the database; null for one published before owners existed.</param>
public sealed record StoredModule(string Name, byte[] Wasm, byte[] Prepared, bool Optimized, string Sha256, DateTimeOffset UpdatedAt, string? Owner);

/// <summary>What tells one version of a database's module from another, as a replica compares them.</summary>
/// <param name="Owner">The owner's identity (hex), or null.</param>
/// <param name="Optimized">Whether the catalog holds the optimized rewrite.</param>
public sealed record ModuleVersion(string Sha256, string? Owner, bool Optimized);
