//! `cloudidl.imagebuilder.ImageService`: GetImage answers from the builds this sandbox recorded.

use tonic::{Request, Response, Status};

use union_idl::cloudidl::imagebuilder::image_service_server::{ImageService, ImageServiceServer};
use union_idl::cloudidl::imagebuilder::{GetImageRequest, GetImageResponse, Image};
use union_image::remote::ImageBuilder;

/// The service (NOT_FOUND for everything when the sandbox has no builder).
#[derive(Debug, Clone)]
pub struct ImageApi {
    builder: Option<ImageBuilder>,
}

impl ImageApi {
    pub(super) fn new(builder: Option<ImageBuilder>) -> Self {
        ImageApi { builder }
    }

    /// As a tonic service.
    pub fn into_server(self) -> ImageServiceServer<Self> {
        ImageServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl ImageService for ImageApi {
    async fn get_image(
        &self,
        request: Request<GetImageRequest>,
    ) -> Result<Response<GetImageResponse>, Status> {
        let req = request.into_inner();
        let id = req
            .id
            .ok_or_else(|| Status::invalid_argument("missing id"))?;
        if id.name.is_empty() {
            return Err(Status::invalid_argument("missing id.name"));
        }
        let fqin = self
            .builder
            .as_ref()
            .and_then(|b| b.built(&id.name))
            .ok_or_else(|| Status::not_found(format!("image {} not found", id.name)))?;
        Ok(Response::new(GetImageResponse {
            image: Some(Image { id: Some(id), fqin }),
        }))
    }
}
