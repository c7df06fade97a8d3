using Procyon.Testing;

namespace Procyon.Tests.Infrastructure;

/// <summary>A test class against its own server with the example and faulty modules published.</summary>
public abstract class ServerTest(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    protected TestServer Server => fixture.Server;

    protected async Task AssertFaultyAddStillAnswersAsync() =>
        Assert.Equal("3", await (await Server.CallAsync("faulty", "add", "[1,2]")).Content.ReadAsStringAsync());

    /// <summary>After an attack: health, a call and the OpenAPI document all still answer.</summary>
    protected async Task AssertServerAnswersAsync()
    {
        Assert.Equal("Healthy", await Server.Http.GetStringAsync("/healthz"));
        await AssertFaultyAddStillAnswersAsync();
        await OpenApiDocuments.AssertValidAsync(Server);
    }
}
